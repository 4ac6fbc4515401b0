import { mount } from 'svelte';
import App from './App.svelte';

const params = new URLSearchParams(location.search);
mount(App, {
  target: document.getElementById('app')!,
  props: {
    agencyKey: params.get('agency') ?? '',
    lang: params.get('lang') === 'es' ? 'es' : 'en',
    service: (params.get('service') ?? '').slice(0, 200),
  },
});
