/**
 * Labels as DigitalOcean tags, and what a droplet says about itself. Tags allow letters, digits,
 * `:`, `-` and `_`: a label `k=v` is the tag `k:v`, other characters made `_`.
 */
import type { Droplet } from './types.js';

export function tag(key: string, value: string): string {
  return `${key}:${value.replace(/[^A-Za-z0-9:_-]/g, '_')}`.slice(0, 255);
}

export function labelsToTags(labels: Record<string, string>): string[] {
  return Object.entries(labels)
    .filter(([k]) => k.startsWith('provisional-'))
    .map(([k, v]) => tag(k, v));
}

export function tagsToLabels(tags: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const t of tags) {
    const i = t.indexOf(':');
    if (i > 0 && t.startsWith('provisional-')) labels[t.slice(0, i)] = t.slice(i + 1);
  }
  return labels;
}

export function publicAddress(d: Droplet): string | undefined {
  return d.networks?.v4?.find((n) => n.type === 'public')?.ip_address;
}
