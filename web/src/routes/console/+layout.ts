// The console is a signed-in app: rendered in the browser, everything private stays behind /api.
export const ssr = false;
