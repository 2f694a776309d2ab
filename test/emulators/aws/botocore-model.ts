/**
 * botocore's EC2 service model (the contract AWS publishes for its SDKs), and a checker of the
 * emulator's answers against it: each element must be a member of its shape under its
 * locationName, lists hold `item`s, leaves have the shape's type, enum values are among the model's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Ec2Request } from '../../../src/emulators/aws/server.js';
import { parseXml, type XmlElement } from '../../../src/emulators/aws/xml.js';

interface ShapeRef {
  shape: string;
  locationName?: string;
}
interface Shape {
  type: string;
  members?: Record<string, ShapeRef>;
  member?: ShapeRef;
  enum?: string[];
}
export interface Model {
  metadata: { apiVersion: string; protocol: string };
  operations: Record<string, { output?: ShapeRef }>;
  shapes: Record<string, Shape>;
}

/** botocore's data directory, from the Python that the AWS CLI runs on, or Debian's package. */
export function loadModel(service = 'ec2', version = '2016-11-15'): Model {
  const dirs: string[] = [];
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      dirs.push(execFileSync(python, ['-c', 'import botocore, os; print(os.path.dirname(botocore.__file__))'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      // Not this interpreter.
    }
  }
  dirs.push('/usr/lib/python3/dist-packages/botocore');
  for (const dir of dirs) {
    const base = join(dir, `data/${service}/${version}/service-2.json`);
    if (existsSync(`${base}.gz`)) return JSON.parse(gunzipSync(readFileSync(`${base}.gz`)).toString('utf8')) as Model;
    if (existsSync(base)) return JSON.parse(readFileSync(base, 'utf8')) as Model;
  }
  throw new Error(`botocore's ${service} model not found (looked in ${dirs.join(', ')}); apt-get install awscli`);
}

function checkElement(model: Model, element: XmlElement, shapeName: string, path: string, problems: string[]): void {
  const shape = model.shapes[shapeName];
  const where = `${path}/${element.name}`;
  switch (shape.type) {
    case 'structure':
      for (const c of element.children) {
        const entry = Object.entries(shape.members ?? {}).find(([name, ref]) => (ref.locationName ?? name) === c.name);
        if (!entry) problems.push(`${where}/${c.name}: not a member of ${shapeName}`);
        else checkElement(model, c, entry[1].shape, where, problems);
      }
      return;
    case 'list': {
      const itemName = shape.member!.locationName ?? 'member';
      for (const c of element.children) {
        if (c.name !== itemName) problems.push(`${where}/${c.name}: list ${shapeName} holds <${itemName}>`);
        else checkElement(model, c, shape.member!.shape, where, problems);
      }
      return;
    }
    default:
      if (element.children.length) problems.push(`${where}: ${shapeName} is a ${shape.type}, got child elements`);
  }
  const text = element.text;
  const ok: Record<string, (t: string) => boolean> = {
    boolean: (t) => t === 'true' || t === 'false',
    integer: (t) => /^-?\d+$/.test(t),
    long: (t) => /^-?\d+$/.test(t),
    timestamp: (t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(t),
    double: (t) => /^-?\d+(\.\d+)?$/.test(t),
    float: (t) => /^-?\d+(\.\d+)?$/.test(t),
    string: () => true,
    blob: () => true,
  };
  if (!(ok[shape.type] ?? (() => false))(text)) problems.push(`${where}: '${text}' is not a ${shape.type}`);
  if (shape.enum && !shape.enum.includes(text)) problems.push(`${where}: '${text}' is not one of ${shapeName}'s values`);
}

/** Problems of one answer against the operation's output shape. */
export function checkAnswer(model: Model, action: string, xml: string): string[] {
  const problems: string[] = [];
  const root = parseXml(xml);
  if (root.name !== `${action}Response`) return [`root element <${root.name}>, expected <${action}Response>`];
  const output = model.operations[action].output?.shape;
  for (const c of root.children) {
    if (c.name === 'requestId') continue;
    // Operations without an output shape answer <return>true</return>, as EC2 does.
    if (!output) {
      if (c.name !== 'return' || c.text !== 'true') problems.push(`${action}/${c.name}: ${action} has no output`);
      continue;
    }
    checkElement(model, { ...root, children: [c] }, output, '', problems);
  }
  return problems.map((p) => `${action}: ${p}`);
}

/** Problems of every successful answer in a request log (recorded with `recordResponses`). */
export function checkAnswers(model: Model, entries: Ec2Request[]): string[] {
  return entries.filter((e) => e.status === 200).flatMap((e) => checkAnswer(model, e.action, e.body!));
}

/** Problems of one answer of a Query-protocol service (ELBv2): `<ActionResponse><ActionResult>` and `<ResponseMetadata>`. */
export function checkQueryAnswer(model: Model, action: string, xml: string): string[] {
  const root = parseXml(xml);
  if (root.name !== `${action}Response`) return [`${action}: root element <${root.name}>, expected <${action}Response>`];
  const problems: string[] = [];
  const output = model.operations[action]?.output?.shape;
  for (const c of root.children) {
    if (c.name === 'ResponseMetadata') continue;
    if (c.name !== `${action}Result`) problems.push(`/${root.name}/${c.name}: expected <${action}Result> or <ResponseMetadata>`);
    else if (!output) {
      if (c.children.length) problems.push(`/${root.name}/${c.name}: ${action} has no output`);
    } else checkElement(model, c, output, `/${root.name}`, problems);
  }
  if (!root.children.some((c) => c.name === 'ResponseMetadata')) problems.push(`/${root.name}: no <ResponseMetadata>`);
  return problems.map((p) => `${action}: ${p}`);
}

export function checkQueryAnswers(model: Model, entries: Ec2Request[]): string[] {
  return entries.filter((e) => e.status === 200).flatMap((e) => checkQueryAnswer(model, e.action, e.body!));
}
