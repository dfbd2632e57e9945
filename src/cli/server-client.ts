/**
 * The CLI's calls to a running Strata over HTTP. A server that does not answer, or answers an error, becomes
 * an Error whose message the `strata` bin prints before exiting 1.
 */

/** Sends a request; throws a message naming the URL when nothing answers there, and the server's own on an error. */
export async function request(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(new URL(path, url), init);
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
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // Not our error shape: fall through to the raw answer.
  }
  return `${url} answered ${response.status}: ${text}`;
}
