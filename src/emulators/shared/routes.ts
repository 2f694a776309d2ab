/**
 * An emulator's routing: handlers keyed by the API reference's path templates (`/v1/servers/{id}`),
 * so that the request log and the conformance tests speak the same names.
 */
export interface Route<H> {
  method: string;
  template: string;
  pattern: RegExp;
  handle: H;
}

export class RouteTable<H> {
  private readonly routes: Route<H>[] = [];

  add(method: string, template: string, handle: H): void {
    const pattern = new RegExp(`^${template.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}/?$`);
    this.routes.push({ method, template, pattern, handle });
  }

  /** The route for this method and path, its path parameters, and whether the path exists for another method (405). */
  match(method: string, path: string): { route?: Route<H>; params: Record<string, string>; pathKnown: boolean } {
    let pathKnown = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathKnown = true;
      if (r.method === method) return { route: r, params: Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)])), pathKnown };
    }
    return { params: {}, pathKnown };
  }
}
