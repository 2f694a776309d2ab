/**
 * The part of cloud-init that the emulator's instances honour from RunInstances' UserData, as the
 * Debian AMIs' cloud-init does at an instance's first boot: a `#cloud-config` document's
 * `ssh_authorized_keys` are authorised for the login user beside the key pair's key (here root, the
 * emulator's only user). Other user data is kept (DescribeInstanceAttribute) but not run.
 */
import { parse } from 'yaml';

export function userDataKeys(base64: string | undefined): string[] {
  if (!base64) return [];
  const text = Buffer.from(base64, 'base64').toString('utf8');
  if (!text.startsWith('#cloud-config')) return [];
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return []; // cloud-init logs a malformed document and goes on without it
  }
  const keys = (doc as { ssh_authorized_keys?: unknown } | null)?.ssh_authorized_keys;
  return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string' && k.trim() !== '').map((k) => k.trim()) : [];
}
