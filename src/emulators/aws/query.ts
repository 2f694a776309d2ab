/**
 * Request parameters of the EC2 Query protocol: a flat form (`Filter.1.Name=tag:app`,
 * `Filter.1.Value.1=web`, `TagSpecification.1.Tag.2.Key=...`) read back as a tree. Lists are
 * 1-based indexed keys under the member's query name (EC2 lists are "flattened").
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html
 */
import { Ec2Error } from './errors.js';

type Node = { value?: string; children: Map<string, Node> };

function emptyNode(): Node {
  return { children: new Map() };
}

export class Params {
  private constructor(private readonly node: Node, private readonly path: string) {}

  static parse(form: URLSearchParams): Params {
    const root = emptyNode();
    for (const [key, value] of form) {
      let node = root;
      for (const part of key.split('.')) {
        let next = node.children.get(part);
        if (!next) node.children.set(part, (next = emptyNode()));
        node = next;
      }
      node.value = value;
    }
    return new Params(root, '');
  }

  private at(name: string): Node | undefined {
    return this.node.children.get(name);
  }

  private label(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  has(name: string): boolean {
    return this.at(name) !== undefined;
  }

  str(name: string): string | undefined {
    return this.at(name)?.value;
  }

  required(name: string): string {
    const value = this.str(name);
    if (value === undefined || value === '') {
      throw new Ec2Error('MissingParameter', `The request must contain the parameter ${this.label(name)}`);
    }
    return value;
  }

  int(name: string): number | undefined {
    const text = this.str(name);
    if (text === undefined) return undefined;
    if (!/^-?\d+$/.test(text)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${text}' for ${this.label(name)}`);
    return Number.parseInt(text, 10);
  }

  /** EC2 reads booleans case-insensitively: libcloud sends `NoReboot=True`. */
  bool(name: string): boolean | undefined {
    const text = this.str(name);
    if (text === undefined) return undefined;
    const lower = text.toLowerCase();
    if (lower !== 'true' && lower !== 'false') {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${text}' for ${this.label(name)}; expected true or false`);
    }
    return lower === 'true';
  }

  /** The structure `name.*` (or undefined when no member of it was sent). */
  sub(name: string): Params | undefined {
    const node = this.at(name);
    return node ? new Params(node, this.label(name)) : undefined;
  }

  /** Members `name.1`, `name.2`, ... in index order, as sub-parameters. */
  list(name: string): Params[] {
    const node = this.at(name);
    if (!node) return [];
    return [...node.children.entries()]
      .filter(([index]) => /^\d+$/.test(index))
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([index, child]) => new Params(child, this.label(`${name}.${index}`)));
  }

  /** Members `name.N` as strings. */
  strings(name: string): string[] {
    return this.list(name)
      .map((p) => p.node.value)
      .filter((v): v is string => v !== undefined);
  }
}
