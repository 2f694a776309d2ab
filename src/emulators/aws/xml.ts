/**
 * XML for the EC2 Query protocol: answers are written from plain objects whose keys are the
 * model's `locationName`s, in order; a list becomes `<item>` elements (EC2's member name). A tiny
 * reader for the same dialect (no attributes but xmlns, no CDATA) serves the tests.
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html
 */

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A value in an answer. undefined is left out; Date is ISO 8601 with milliseconds, UTC. */
export type XmlValue = string | number | boolean | Date | undefined | null | XmlObject | XmlValue[];
export interface XmlObject {
  [key: string]: XmlValue;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function writeValue(name: string, value: XmlValue, out: string[]): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      out.push(`<${name}/>`);
      return;
    }
    out.push(`<${name}>`);
    for (const item of value) writeValue('item', item, out);
    out.push(`</${name}>`);
    return;
  }
  if (value instanceof Date) {
    out.push(`<${name}>${value.toISOString()}</${name}>`);
    return;
  }
  if (typeof value === 'object') {
    out.push(`<${name}>`);
    for (const [key, child] of Object.entries(value)) writeValue(key, child, out);
    out.push(`</${name}>`);
    return;
  }
  out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
}

/** `<ActionResponse xmlns=...><requestId>...</requestId>...body...</ActionResponse>` */
export function responseXml(action: string, requestId: string, body: XmlObject): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>\n', `<${action}Response xmlns="${EC2_XMLNS}">`];
  out.push(`<requestId>${requestId}</requestId>`);
  for (const [key, value] of Object.entries(body)) writeValue(key, value, out);
  out.push(`</${action}Response>`);
  return out.join('');
}

/** EC2's error document (note `RequestID`, capitalised unlike in answers). */
export function errorXml(code: string, message: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Response><Errors><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error></Errors>` +
    `<RequestID>${requestId}</RequestID></Response>`
  );
}

/** A parsed element: name, text (leaves) and children in order. */
export interface XmlElement {
  name: string;
  text: string;
  children: XmlElement[];
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    if (named[e]) return named[e];
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10));
  });
}

/** Parses the dialect responseXml writes (enough for tests; throws on anything malformed). */
export function parseXml(text: string): XmlElement {
  const source = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/g;
  const stack: XmlElement[] = [{ name: '#document', text: '', children: [] }];
  let last = 0;
  for (let m = tag.exec(source); m; m = tag.exec(source)) {
    const between = source.slice(last, m.index);
    if (between.trim() !== '') stack[stack.length - 1].text += unescapeXml(between);
    last = tag.lastIndex;
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      const open = stack.pop()!;
      if (open.name !== name) throw new Error(`XML: </${name}> closes <${open.name}>`);
      continue;
    }
    const element: XmlElement = { name, text: '', children: [] };
    stack[stack.length - 1].children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1 || source.slice(last).trim() !== '') throw new Error('XML: unbalanced document');
  const [root] = stack[0].children;
  if (!root) throw new Error('XML: no root element');
  return root;
}

/** The first child element called `name` (or undefined). */
export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}
