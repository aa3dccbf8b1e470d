// A small history router: the server answers every dashboard path with index.html.

class Router {
  path = $state(typeof location === 'undefined' ? '/' : location.pathname);

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('popstate', () => (this.path = location.pathname));
    }
  }

  navigate(path: string): void {
    if (path !== this.path) {
      history.pushState({}, '', path);
      this.path = path;
    }
  }

  /** For <a href> elements: navigate without a page load (but let modified clicks through). */
  link = (event: MouseEvent): void => {
    const anchor = event.currentTarget as HTMLAnchorElement;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    this.navigate(new URL(anchor.href).pathname);
  };
}

export const router = new Router();
