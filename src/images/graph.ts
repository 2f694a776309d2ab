/**
 * The image graph: which image is built from which. Images of this project form a forest whose
 * roots are built from provider base images.
 */
export interface ImageNode {
  name: string;
  /** The `base-image:` value. */
  base: string;
}

export class ImageGraph {
  private readonly nodes = new Map<string, ImageNode>();

  constructor(images: Record<string, { 'base-image': string }>) {
    for (const [name, image] of Object.entries(images)) this.nodes.set(name, { name, base: image['base-image'] });
  }

  has(name: string): boolean {
    return this.nodes.has(name);
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  /** The project image this one is built from, or undefined when it is built from a provider base. */
  parentOf(name: string): string | undefined {
    const base = this.nodes.get(name)?.base;
    return base !== undefined && this.nodes.has(base) ? base : undefined;
  }

  /** The provider base at the root of this image's chain. */
  rootBaseOf(name: string): string {
    let current = name;
    for (const _ of this.nodes) {
      const parent = this.parentOf(current);
      if (!parent) return this.nodes.get(current)!.base;
      current = parent;
    }
    throw new Error(`cycle through ${name}`);
  }

  childrenOf(name: string): string[] {
    return [...this.nodes.values()].filter((n) => n.base === name).map((n) => n.name).sort();
  }

  /** Every cycle, each as the list of names around it (first name repeated at the end). */
  cycles(): string[][] {
    const found: string[][] = [];
    const done = new Set<string>();
    for (const start of [...this.nodes.keys()].sort()) {
      const path: string[] = [];
      const onPath = new Set<string>();
      let current: string | undefined = start;
      while (current && !done.has(current)) {
        if (onPath.has(current)) {
          found.push([...path.slice(path.indexOf(current)), current]);
          break;
        }
        onPath.add(current);
        path.push(current);
        current = this.parentOf(current);
      }
      for (const n of path) done.add(n);
    }
    return found;
  }

  /**
   * `names` (all images when undefined) in dependency order: every parent before its children.
   * Ties are broken by name so the order is stable.
   */
  order(names?: string[]): string[] {
    const wanted = new Set(names ?? this.nodes.keys());
    const depth = (n: string): number => {
      let d = 0;
      for (let p = this.parentOf(n); p; p = this.parentOf(p)) d++;
      return d;
    };
    return [...wanted].sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
  }

  /** Images built (directly or not) from `name`. */
  descendantsOf(name: string): string[] {
    const out: string[] = [];
    const queue = this.childrenOf(name);
    while (queue.length) {
      const next = queue.shift()!;
      out.push(next);
      queue.push(...this.childrenOf(next));
    }
    return out;
  }
}
