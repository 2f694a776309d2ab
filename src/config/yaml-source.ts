/** A parsed YAML file that can say on which line a key path is, for error messages. */
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigProblem } from '../core/errors.js';

export class YamlSource {
  readonly doc: Document;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: true, strict: true });
  }

  /** YAML syntax errors, each with its line. */
  syntaxProblems(): ConfigProblem[] {
    return this.doc.errors.map((e) => ({
      file: this.file,
      path: '',
      line: e.linePos?.[0]?.line,
      message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    }));
  }

  /** 1-based line of the key (or, failing that, the nearest enclosing key) at `path`. */
  lineOf(path: readonly PropertyKey[]): number | undefined {
    let node: unknown = this.doc.contents;
    let line: number | undefined = this.posOf(node as Node);
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => {
          const k = p.key as { value?: unknown } | null;
          return k != null && String(k.value ?? k) === String(key);
        });
        if (!pair) break;
        line = this.posOf(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number') {
        node = node.items[key];
        line = this.posOf(node as Node) ?? line;
      } else break;
    }
    return line;
  }

  private posOf(node: Node | null | undefined): number | undefined {
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }
}

/** `a.b[0].c` for a key path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
