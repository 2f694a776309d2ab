/**
 * The checks on `deployments:` that a schema cannot make: images that exist, `from:` naming
 * another environment that deploys the same image (never itself, never in a cycle), and runtime
 * values that systemd's EnvironmentFile= can carry.
 */
import type { ConfigProblem } from '../core/errors.js';
import type { ImageGraph } from '../images/graph.js';
import { looksSecret } from './interpolate.js';
import type { DeploymentImageConfig } from './schema.js';
import { closest } from './suggest.js';

type Problem = (path: PropertyKey[], message: string) => ConfigProblem;

export function checkDeployments(deployments: Record<string, Record<string, DeploymentImageConfig>>, graph: ImageGraph, problem: Problem): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const environments = Object.keys(deployments);
  for (const [envName, images] of Object.entries(deployments)) {
    for (const [image, wanted] of Object.entries(images)) {
      if (!graph.has(image)) {
        const guess = closest(image, graph.names());
        problems.push(problem(['deployments', envName, image], `no image "${image}" in images:${guess ? ` (did you mean "${guess}"?)` : ''}`));
      }
      const source = wanted.from;
      if (source !== undefined) {
        const at = ['deployments', envName, image, 'from'];
        if (source === envName) problems.push(problem(at, `an environment cannot take its versions from itself; name another environment (${environments.filter((e) => e !== envName).join(', ') || 'none yet'}) or remove from:`));
        else if (!deployments[source]) {
          const guess = closest(source, environments);
          problems.push(problem(at, `no environment "${source}" under deployments:${guess ? ` (did you mean "${guess}"?)` : `; environments: ${environments.join(', ')}`}`));
        } else if (!deployments[source]![image]) problems.push(problem(at, `${source} deploys no ${image}, so there is nothing to take from it; add ${image} to deployments.${source}, or remove from:`));
      }
      for (const [name, value] of Object.entries(wanted.env ?? {})) {
        // systemd skips a variable whose value has control characters other than tab and newline.
        if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value)) {
          problems.push(problem(['deployments', envName, image, 'env', name], 'has a control character (other than tab and newline) that systemd\'s EnvironmentFile= would refuse; remove it'));
        }
      }
    }
  }
  for (const cycle of fromCycles(deployments)) {
    problems.push(problem(['deployments', cycle[0]!.env, cycle[0]!.image, 'from'], `environments take ${cycle[0]!.image} from each other in a cycle: ${cycle.map((c) => c.env).join(' -> ')} -> ${cycle[0]!.env}; one of them must deploy the latest version (no from:)`));
  }
  return problems;
}

/** Cycles of `from:` per image (a -> b -> a), each reported once. */
function fromCycles(deployments: Record<string, Record<string, DeploymentImageConfig>>): { env: string; image: string }[][] {
  const cycles: { env: string; image: string }[][] = [];
  const seen = new Set<string>();
  for (const [start, images] of Object.entries(deployments)) {
    for (const image of Object.keys(images)) {
      const path: string[] = [];
      for (let env: string | undefined = start; env && deployments[env]?.[image]; env = deployments[env]![image]!.from) {
        if (env === deployments[env]![image]!.from) break; // taking from itself is reported on its own
        const at = path.indexOf(env);
        if (at >= 0) {
          const cycle = path.slice(at);
          const key = `${image}:${[...cycle].sort().join(',')}`;
          if (!seen.has(key)) {
            seen.add(key);
            cycles.push(cycle.map((e) => ({ env: e, image })));
          }
          break;
        }
        path.push(env);
      }
    }
  }
  return cycles;
}

/** Runtime values to redact: those under secret-looking names (values from secret-looking variables are already known). */
export function deploymentSecrets(deployments: Record<string, Record<string, DeploymentImageConfig>>): string[] {
  return Object.values(deployments).flatMap((images) =>
    Object.values(images).flatMap((wanted) => Object.entries(wanted.env ?? {}).filter(([name]) => looksSecret(name)).map(([, value]) => value)),
  );
}
