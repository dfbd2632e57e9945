import { api, ApiError } from '../api.js';
import { h, replace } from '../dom.js';

/**
 * The login form, shown when the console has no session: the token is posted once to `POST /v1/session`, which
 * answers with the session cookie (HttpOnly: this script never sees it), and the page reloads as that token.
 * The URL `strata start` prints (`/?token=...`) does the same without the form.
 */
export function loginPage(root: HTMLElement): void {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', placeholder: 'API token', 'aria-label': 'API token', size: 50 });
  const message = h('p', { class: 'error', hidden: true });
  const submit = async (event: Event) => {
    event.preventDefault();
    message.hidden = true;
    try {
      await api('/v1/session', { json: { token: input.value.trim() } });
      location.reload();
    } catch (error) {
      message.hidden = false;
      message.textContent =
        error instanceof ApiError && error.status === 401 ? 'That token is not valid (unknown or revoked).' : `Cannot log in: ${(error as Error).message}`;
    }
  };
  replace(
    root,
    h('h1', {}, 'Log in'),
    h(
      'p',
      { class: 'lead' },
      'Every call to Strata needs an API token. Open the URL that ',
      h('code', {}, 'strata start'),
      ' printed (it ends in ',
      h('code', {}, '?token=…'),
      '), or paste a token made with ',
      h('code', {}, 'strata token create'),
      '.',
    ),
    h('form', { class: 'login', onsubmit: (event: Event) => void submit(event) }, input, ' ', h('button', { type: 'submit' }, 'Log in')),
    message,
  );
  input.focus();
}
