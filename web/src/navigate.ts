/** The event main.ts re-renders on, after {@link navigate} changed the URL. */
export const NAVIGATE_EVENT = 'strata:navigate';

/** Goes to a console path without reloading the page. */
export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}
