/** Hetzner labels: what Provisional's labels become on Hetzner resources, and selectors to find them again. */

/** Label values: up to 63 of [A-Za-z0-9._-], alphanumeric at both ends (https://docs.hetzner.cloud/#labels). */
export function labelValue(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** Provisional's own labels (provisional-*), with values Hetzner takes. */
export function toLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('provisional-')).map(([k, v]) => [k, labelValue(v)]));
}

/** `k=v,k2=v2`: every pair must match. */
export function selector(labels: Record<string, string>): string {
  return Object.entries(toLabels(labels)).map(([k, v]) => `${k}=${v}`).join(',');
}
