/**
 * Elastic Load Balancing v2's side of the Query protocol (API version 2015-12-01): answers as
 * `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>`, lists of `<member>`, and
 * errors as `<ErrorResponse>` (unlike EC2's own dialect in xml.ts).
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html
 */
import type { Params } from './query.js';
import { escapeXml, type XmlValue } from './xml.js';

export const ELBV2_XMLNS = 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/';

function write(name: string, value: XmlValue, out: string[]): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    out.push(`<${name}>`);
    for (const item of value) write('member', item, out);
    out.push(`</${name}>`);
  } else if (value instanceof Date) out.push(`<${name}>${value.toISOString()}</${name}>`);
  else if (typeof value === 'object') {
    out.push(`<${name}>`);
    for (const [key, child] of Object.entries(value)) write(key, child, out);
    out.push(`</${name}>`);
  } else out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
}

export function elbv2ResponseXml(action: string, requestId: string, result: Record<string, XmlValue>): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>\n', `<${action}Response xmlns="${ELBV2_XMLNS}">`];
  write(`${action}Result`, result, out);
  out.push(`<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`);
  return out.join('');
}

export function elbv2ErrorXml(code: string, message: string, requestId: string, status: number): string {
  const type = status >= 500 ? 'Receiver' : 'Sender';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${ELBV2_XMLNS}"><Error><Type>${type}</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
}

/** Members of a Query-protocol list: `Name.member.1`, `Name.member.2`, ... */
export function members(p: Params, name: string): Params[] {
  return p.sub(name)?.list('member') ?? [];
}

export function memberStrings(p: Params, name: string): string[] {
  return p.sub(name)?.strings('member') ?? [];
}
