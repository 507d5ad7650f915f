// The signed-in credential, kept in sessionStorage: it dies with the tab, never in a cookie.

const KEY = "tenantgraph.session";

// {credential, org}: an API key (tg_…) or a JWT, and the org for membership mode (or null).
export function load() {
  const raw = sessionStorage.getItem(KEY);
  return raw ? JSON.parse(raw) : null;
}

export function save(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clear() {
  sessionStorage.removeItem(KEY);
}
