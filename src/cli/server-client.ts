/**
 * The CLI's calls to a running Strata over HTTP. A server that does not answer, or answers an error, becomes
 * an Error whose message the `strata` bin prints before exiting 1.
 *
 * Every call carries the token of the environment: `STRATA_TOKEN`, or `STRATA_ADMIN_TOKEN` when only that is
 * set (the shell that started the server). Over HTTPS with a self-signed certificate, point Node at it with
 * `NODE_EXTRA_CA_CERTS=cert.pem`.
 */

/** The token the CLI sends, from the environment; undefined when none is set. */
export function cliToken(): string | undefined {
  const token = process.env.STRATA_TOKEN || process.env.STRATA_ADMIN_TOKEN;
  return token === undefined || token === '' ? undefined : token;
}

/** `{authorization: "Bearer ..."}` for the environment's token, or no header without one. */
export function authHeaders(): Record<string, string> {
  const token = cliToken();
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** Sends a request; throws a message naming the URL when nothing answers there, and the server's own on an error. */
export async function request(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(authHeaders())) if (!headers.has(name)) headers.set(name, value);
  let response: Response;
  try {
    response = await fetch(new URL(path, url), { ...init, headers });
  } catch {
    throw new Error(`no Strata server answers at ${url}; start one with \`strata start\``);
  }
  if (!response.ok) throw new Error(await errorMessage(response, url));
  return response;
}

/** GETs a JSON answer. */
export async function getJson<T>(url: string, path: string): Promise<T> {
  return (await (await request(url, path)).json()) as T;
}

/** POSTs a JSON body and reads a JSON answer. */
export async function postJson<T>(url: string, path: string, body: unknown): Promise<T> {
  const response = await request(url, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await response.json()) as T;
}

/** The message of an `{"error": {"code", "message"}}` answer, or the status and text of any other. */
async function errorMessage(response: Response, url: string): Promise<string> {
  const text = await response.text().catch(() => '');
  if (response.status === 401) {
    return cliToken() === undefined
      ? `${url} needs an API token: set STRATA_TOKEN (an admin makes one with \`strata token create NAME --policy P\`)`
      : `${url} refused the token in STRATA_TOKEN (unknown or revoked); ask an admin for a new one`;
  }
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // Not our error shape: fall through to the raw answer.
  }
  return `${url} answered ${response.status}: ${text}`;
}
