// The portal talks to /api from the browser; nothing private is rendered on the server.
export const ssr = false;
