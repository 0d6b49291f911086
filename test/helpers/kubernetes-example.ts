import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** The file examples/kubernetes/sidecache.yaml, which these helpers read. */
export const MANIFEST = new URL('../../examples/kubernetes/sidecache.yaml', import.meta.url).pathname;

/** The parts of a container these tests read (kubernetes-models checks the rest against the API's schema). */
export interface Container {
  name: string;
  image: string;
  args?: string[];
  restartPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Probe {
  exec?: { command: string[] };
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
}

/** A document of the manifest: untyped YAML, each test reads the fields it checks. */
export type Doc = any;

/**
 * Every document of the manifest, read as Kubernetes reads it: YAML 1.1 (sigs.k8s.io/yaml), where
 * `0440` is octal and `yes` a boolean. `yaml12` is the same text read as YAML 1.2.
 */
export function manifest(version: '1.1' | '1.2' = '1.1'): Doc[] {
  return parseAllDocuments(readFileSync(MANIFEST, 'utf8'), { version }).map((d) => {
    if (d.errors.length > 0) throw new Error(`${MANIFEST}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  });
}

export function one(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${MANIFEST}, found ${found.length}`);
  return found[0];
}

/** The sidecache container (a native sidecar among the init containers) and the pod spec around it. */
export function sidecar(docs: Doc[]): { pod: Doc; container: Container } {
  const pod = one(docs, 'Deployment').spec.template.spec;
  const container = (pod.initContainers ?? []).find((c: Container) => c.name === 'sidecache');
  if (container === undefined) throw new Error('no init container named sidecache');
  return { pod, container };
}

/**
 * The sidecache.yaml that the ConfigMap mounts, with the Secret's mount path pointing at a temporary
 * folder that holds the Secret's keys as files, as the kubelet would lay them out. `cleanup` removes it.
 */
export function mountedConfig(docs: Doc[]): { yaml: string; secretDir: string; mountPath: string; cleanup: () => void } {
  const { pod, container } = sidecar(docs);
  const secret = one(docs, 'Secret');
  const volume = pod.volumes.find((v: Doc) => v.secret?.secretName === secret.metadata.name);
  const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
  if (mount === undefined) throw new Error(`the Secret ${secret.metadata.name} is not mounted in the sidecache container`);
  const secretDir = mkdtempSync(join(tmpdir(), 'sidecache-k8s-'));
  for (const [key, value] of Object.entries<string>(secret.stringData ?? {})) writeFileSync(join(secretDir, key), value);
  for (const [key, value] of Object.entries<string>(secret.data ?? {})) writeFileSync(join(secretDir, key), Buffer.from(value, 'base64'));
  const text: string = one(docs, 'ConfigMap').data['sidecache.yaml'];
  return {
    yaml: text.replaceAll(`\${file:${mount.mountPath}/`, `\${file:${secretDir}/`),
    secretDir,
    mountPath: mount.mountPath,
    cleanup: () => rmSync(secretDir, { recursive: true, force: true }),
  };
}

/** The loopback ports the startup probe's script dials: `[8080, 6432].map(accepts)`. */
export function probedPorts(probe: Probe | undefined): number[] {
  const script = probe?.exec?.command.at(-1) ?? '';
  const list = /\[([\d,\s]+)\]\.map\(accepts\)/.exec(script);
  if (list?.[1] === undefined) throw new Error(`the startup probe does not dial a list of ports: ${script}`);
  return list[1].split(',').map((p) => Number(p.trim()));
}
