/**
 * Kit: the one place that turns a launch request's authorised keys (one OpenSSH key a line) into
 * what cloud images read, a cloud-init `#cloud-config` document:
 *
 *   authorizedKeyLines(authorizedKey)        -> ['ssh-ed25519 AAAA... a', 'ssh-ed25519 AAAA... b']
 *   cloudConfig({ keys, rootLogin })         -> '#cloud-config\nssh_authorized_keys:\n  - "..."\n'
 *
 * Used where a provider cannot hand every key over otherwise: the local provider's seed for URL
 * bases, and EC2, whose key pair carries one key (the others go in RunInstances' UserData).
 */
export function authorizedKeyLines(authorizedKey: string): string[] {
  return authorizedKey
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
}

export function cloudConfig(opts: { keys: string[]; rootLogin?: boolean }): string {
  return [
    '#cloud-config',
    ...(opts.rootLogin ? ['disable_root: false', 'ssh_pwauth: false'] : []),
    'ssh_authorized_keys:',
    // JSON strings are YAML double-quoted scalars: a key's comment can hold anything.
    ...opts.keys.map((key) => `  - ${JSON.stringify(key)}`),
    '',
  ].join('\n');
}
