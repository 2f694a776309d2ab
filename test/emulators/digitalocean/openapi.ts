/**
 * Checks the emulator's answers against DigitalOcean's own OpenAPI 3.0 description
 * (../shared/specs/digitalocean-openapi.yaml): the body against the schema of the matched
 * operation's response for that status (or `default`), and the headers it declares.
 *
 * OpenAPI 3.0 schemas are close to JSON Schema draft 7 but not quite: `nullable` (ajv knows it),
 * `example`, `x-*`, `discriminator`, `readOnly`... (ignored with strict: false). Formats are not
 * checked (ajv-formats would be one more package; the emulator writes its dates and addresses in
 * one place, views.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import type { LoggedRequest } from '../../../src/emulators/shared/request-log.js';

const Ajv = AjvModule.default;

/** The spec lives beside the repository (see the issue): ../shared/specs from the repository root. */
export function defaultSpecPath(): string {
  if (process.env.PROVISIONAL_DO_OPENAPI) return process.env.PROVISIONAL_DO_OPENAPI;
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
  return join(repoRoot, '../shared/specs/digitalocean-openapi.yaml');
}

type Json = Record<string, unknown>;

interface ResponseSpec {
  schema?: Json;
  schemaPointer?: string;
  headers: Record<string, Json>;
}

const pointer = (parts: string[]) => `#/${parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

export class OpenApiValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  private constructor(private readonly spec: Json) {
    this.ajv.addSchema(spec, 'do');
  }

  static async load(path = defaultSpecPath()): Promise<OpenApiValidator> {
    return new OpenApiValidator(parse(await readFile(path, 'utf8'), { maxAliasCount: -1 }) as Json);
  }

  /** Whether the description has this operation (e.g. GET /v2/droplets/{droplet_id}). */
  hasOperation(method: string, template: string): boolean {
    return !!this.operation(method, template);
  }

  private operation(method: string, template: string): Json | undefined {
    const paths = this.spec.paths as Record<string, Json>;
    return paths[template]?.[method.toLowerCase()] as Json | undefined;
  }

  private resolve(obj: Json, at: string[]): { obj: Json; at: string[] } {
    let current = obj;
    let where = at;
    while (typeof current.$ref === 'string') {
      const parts = (current.$ref as string).replace(/^#\//, '').split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
      current = parts.reduce<unknown>((o, k) => (o as Json)[k], this.spec) as Json;
      where = parts;
    }
    return { obj: current, at: where };
  }

  private response(method: string, template: string, status: number): ResponseSpec | string {
    const op = this.operation(method, template);
    if (!op) return `the description has no operation ${method} ${template}`;
    const responses = op.responses as Json;
    const key = String(status) in responses ? String(status) : 'default' in responses ? 'default' : undefined;
    if (!key) return `${method} ${template} declares no ${status} response (nor a default)`;
    const { obj, at } = this.resolve(responses[key] as Json, ['paths', template, method.toLowerCase(), 'responses', key]);
    const content = obj.content as Record<string, Json> | undefined;
    const json = content?.['application/json'];
    const headers: Record<string, Json> = {};
    for (const [name, header] of Object.entries((obj.headers ?? {}) as Record<string, Json>)) headers[name.toLowerCase()] = this.resolve(header, []).obj;
    if (!json?.schema) return { headers };
    return { schema: json.schema as Json, schemaPointer: pointer([...at, 'content', 'application/json', 'schema']), headers };
  }

  /** Problems with one answer; an empty list when it conforms. */
  validate(entry: Pick<LoggedRequest, 'method' | 'template' | 'path' | 'status' | 'responseBody' | 'responseHeaders'>): string[] {
    const where = `${entry.method} ${entry.path} -> ${entry.status}`;
    if (!entry.template) {
      // An unknown path: only the error body can be checked.
      return entry.status === 404 ? this.check('#/components/schemas/error', entry.responseBody, where) : [`${where}: not an operation of the emulator`];
    }
    const spec = this.response(entry.method, entry.template, entry.status);
    if (typeof spec === 'string') return [`${where}: ${spec}`];
    const problems: string[] = [];
    for (const [name, header] of Object.entries(spec.headers)) {
      const value = entry.responseHeaders[name];
      if (value === undefined) {
        if (name.startsWith('ratelimit-')) problems.push(`${where}: header ${name} missing`);
        continue;
      }
      const type = (header.schema as Json | undefined)?.type;
      if (type === 'integer' && !/^-?\d+$/.test(value)) problems.push(`${where}: header ${name} is not an integer: ${value}`);
    }
    if (spec.schemaPointer) problems.push(...this.check(spec.schemaPointer, entry.responseBody, where));
    else if (entry.responseBody !== undefined && entry.status === 204) problems.push(`${where}: a 204 answer has a body`);
    return problems;
  }

  private check(schemaPointer: string, body: unknown, where: string): string[] {
    let validate = this.compiled.get(schemaPointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `do${schemaPointer}` });
      this.compiled.set(schemaPointer, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).slice(0, 8).map((e) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }

  /** Problems with every logged answer. */
  validateAll(entries: LoggedRequest[]): string[] {
    return entries.flatMap((e) => this.validate(e));
  }
}
