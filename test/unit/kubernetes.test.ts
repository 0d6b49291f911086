import { readFileSync } from 'node:fs';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { isLoopback, parseListen } from '../../src/config/fields.js';
import type { Config } from '../../src/config/schema.js';
import { type Container, type Doc, manifest, mountedConfig, one, probedPorts, sidecar } from '../helpers/kubernetes-example.js';

/**
 * examples/kubernetes/sidecache.yaml, checked offline: each document against the Kubernetes API's
 * schema (kubernetes-models, built from the API's OpenAPI; unknown fields are not reported by it),
 * then what the kubelet and the Pod Security Admission would refuse, and that the pod matches the
 * sidecache configuration it mounts, read by sidecache's own loader.
 * test/integration/kubernetes-probe.test.ts runs the startup probe against a real sidecache.
 */
const docs = manifest();
const { pod, container: sidecache } = sidecar(docs);
const containers: Container[] = [...(pod.initContainers ?? []), ...pod.containers];
const mounted = mountedConfig(docs);
afterAll(mounted.cleanup);
/** The environment the sidecache container gets: only literal values (secrets come as files). */
const containerEnv = Object.fromEntries((sidecache.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
const config: Config = parseConfig(mounted.yaml, 'examples/kubernetes configmap', containerEnv);

const MODELS: Record<string, new (data: Doc) => { validate(): void }> = {
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `500M`) in bytes. */
function quantity(text: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(text);
  if (match === null) throw new Error(`not a memory quantity: ${text}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** The value a container runs with: its own securityContext, else the pod's. */
function effective(container: Container, field: string): unknown {
  return container.securityContext?.[field] ?? pod.securityContext?.[field];
}

function portNumber(container: Container, port: string | number): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

describe('examples/kubernetes/sidecache.yaml: documents', () => {
  it('each document is one the API accepts: known kind, metadata.name, valid against its schema', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Secret', 'ConfigMap', 'Deployment', 'PodMonitor']);
    for (const doc of docs) {
      expect(typeof doc.metadata?.name, `${doc.kind} metadata.name`).toBe('string');
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new Model!(doc).validate(), doc.kind).not.toThrow();
    }
  });

  it('a mistake the schema catches is caught (the validation is not a no-op)', () => {
    const broken = structuredClone(one(docs, 'Deployment'));
    broken.spec.template.spec.initContainers[0].securityContext.runAsUser = 'node';
    expect(() => new Deployment(broken).validate()).toThrow(/runAsUser/);
    delete broken.spec.template.spec.containers[0].name;
    expect(() => new Deployment(broken).validate()).toThrow(/name/);
  });

  it('reads the same as YAML 1.1 (Kubernetes) and YAML 1.2: no octal, yes/no or on/off surprises', () => {
    expect(manifest('1.2')).toEqual(docs);
  });

  it('every container has a name and an image, and the names are unique in the pod', () => {
    for (const c of containers) expect([typeof c.name, typeof c.image], JSON.stringify(c.name)).toEqual(['string', 'string']);
    expect(new Set(containers.map((c) => c.name)).size).toBe(containers.length);
  });
});

describe('examples/kubernetes/sidecache.yaml: the pod starts under the restricted Pod Security Standard', () => {
  it('every container runs as a numeric, non-root UID and GID (the kubelet cannot verify a user name)', () => {
    for (const c of containers) {
      expect(effective(c, 'runAsNonRoot'), c.name).toBe(true);
      expect(effective(c, 'runAsUser'), c.name).toBeTypeOf('number');
      expect(effective(c, 'runAsUser'), c.name).toBeGreaterThan(0);
      expect(effective(c, 'runAsGroup'), c.name).toBeGreaterThan(0);
    }
  });

  it('every container: no privilege escalation, every capability dropped, RuntimeDefault seccomp, read-only root', () => {
    for (const c of containers) {
      expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
      expect(c.securityContext?.privileged ?? false, c.name).toBe(false);
      expect(c.securityContext?.capabilities?.drop, c.name).toContain('ALL');
      expect(c.securityContext?.capabilities?.add ?? [], c.name).toEqual([]);
      expect((effective(c, 'seccompProfile') as { type?: string } | undefined)?.type, c.name).toBe('RuntimeDefault');
      expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
    }
  });

  it('the pod shares nothing with the node and mounts only restricted volume types', () => {
    for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) expect(pod[field] ?? false, field).toBe(false);
    for (const v of pod.volumes)
      expect(
        Object.keys(v).filter((k) => k !== 'name'),
        v.name,
      ).toSatisfy((kinds: string[]) => kinds.every((k) => ['configMap', 'secret', 'emptyDir', 'projected'].includes(k)));
    for (const c of containers) for (const p of c.ports ?? []) expect(p, c.name).not.toHaveProperty('hostPort');
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it("the Dockerfile's user is the pod's numeric UID:GID, and every stage is built on Node 24", () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users).toEqual([`${effective(sidecache, 'runAsUser')}:${effective(sidecache, 'runAsGroup')}`]);
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(base).toMatch(/^node:24-/);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m);
    expect(sidecache.args?.[0]).toBe('start');
  });
});

describe('examples/kubernetes/sidecache.yaml: sidecache in the pod', () => {
  it('is a native sidecar: an init container restarted Always, started before the app and stopped after it', () => {
    expect(sidecache.restartPolicy).toBe('Always');
    expect(pod.containers.map((c: Container) => c.name)).not.toContain('sidecache');
    expect(sidecache.startupProbe).toBeDefined();
  });

  it('mounts the ConfigMap where its arguments read the configuration', () => {
    const configMap = one(docs, 'ConfigMap');
    const volume = pod.volumes.find((v: Doc) => v.configMap?.name === configMap.metadata.name);
    const mount = sidecache.volumeMounts?.find((m) => m.name === volume.name);
    const file = sidecache.args?.[sidecache.args.indexOf('-c') + 1];
    expect(file).toBe(`${mount?.mountPath}/sidecache.yaml`);
    expect(Object.keys(configMap.data)).toEqual(['sidecache.yaml']);
  });

  it('the admin port is the one the configuration listens on, reachable on the pod IP, and token-protected', () => {
    const admin = parseListen(config.admin.listen);
    expect(admin).toBeDefined();
    expect(isLoopback(admin!.host), 'probes and Prometheus dial the pod IP').toBe(false);
    expect(sidecache.ports).toEqual([{ name: 'admin', containerPort: admin!.port }]);
    expect(config.admin.token.length).toBeGreaterThan(0);
    expect(config.admin.allowUnauthenticated).toBe(false);
  });

  it('the cache listeners are loopback-only: the cache is the app’s, not reachable from other pods', () => {
    for (const listener of [...config.http, ...config.postgres]) expect(isLoopback(parseListen(listener.listen)!.host), listener.name).toBe(true);
  });

  it('the liveness probe asks /healthz on the admin port', () => {
    const get = sidecache.livenessProbe?.httpGet;
    expect(get?.path).toBe('/healthz');
    expect(portNumber(sidecache, get!.port)).toBe(parseListen(config.admin.listen)!.port);
  });

  it('the startup probe dials exactly the listeners of the configuration', () => {
    const listened = [...config.http, ...config.postgres].map((l) => parseListen(l.listen)!.port);
    expect(probedPorts(sidecache.startupProbe).sort()).toEqual(listened.sort());
    expect(sidecache.startupProbe?.exec?.command.slice(0, 2)).toEqual(['node', '-e']);
  });

  it('readiness asks /readyz, which a bus outage does not fail: every bus serves by whileDown and readyz.requireBuses is off (issue 17)', () => {
    expect(config.invalidation.length).toBeGreaterThan(0);
    expect(config.readyz.requireBuses).toBe(false);
    expect(sidecache.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(portNumber(sidecache, sidecache.readinessProbe!.httpGet!.port)).toBe(parseListen(config.admin.listen)!.port);
    for (const bus of config.invalidation) expect(bus.whileDown, bus.type).toEqual({ maxAgeMs: 0 });
    for (const c of containers) expect(JSON.stringify(c.startupProbe ?? {}), c.name).not.toContain('readyz');
  });

  it("the grace period covers the app's preStop sleep and then sidecache's shutdownGrace", () => {
    const app = pod.containers.find((c: Container) => c.name === 'app');
    const sleep = app.lifecycle?.preStop?.sleep?.seconds;
    expect(sleep).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sleep + config.shutdownGrace / 1000 + 10);
  });

  it("the memory limit leaves headroom above cache.maxBytes for Node's heap and responses in flight", () => {
    const limit = quantity(sidecache.resources?.limits?.memory ?? '0');
    expect(limit).toBeGreaterThanOrEqual(config.cache.maxBytes + 128 * 2 ** 20);
  });
});

describe('examples/kubernetes/sidecache.yaml: the Secret', () => {
  const secret = one(docs, 'Secret');
  const keys = Object.keys({ ...secret.stringData, ...secret.data });
  const text: string = one(docs, 'ConfigMap').data['sidecache.yaml'];

  it('holds exactly the keys the configuration and the containers reference', () => {
    const fromFiles = [...text.matchAll(/\$\{file:([^}]+)\}/g)].map(([, path = '']) => {
      expect(path.startsWith(`${mounted.mountPath}/`), path).toBe(true);
      return path.slice(mounted.mountPath.length + 1);
    });
    const fromEnv = containers.flatMap((c) =>
      (c.env ?? []).flatMap((e) => {
        const ref = e.valueFrom?.secretKeyRef;
        return ref !== undefined && ref.name === secret.metadata.name ? [ref.key] : [];
      }),
    );
    expect([...new Set([...fromFiles, ...fromEnv])].sort()).toEqual(keys.sort());
  });

  it('the configuration loads with the Secret mounted, and fails without it (a reference is a real read)', () => {
    expect(config.admin.token).toBe(secret.stringData['admin-token']);
    expect(config.invalidation.find((b) => b.type === 'postgres')?.url).toContain(`:${secret.stringData['database-password']}@`);
    const unmounted = mountedConfig(docs);
    unmounted.cleanup();
    expect(() => parseConfig(unmounted.yaml, 'unmounted', containerEnv)).toThrow(/cannot read/);
  });

  it('is readable by the container user through fsGroup, and by no other user', () => {
    const volume = pod.volumes.find((v: Doc) => v.secret?.secretName === secret.metadata.name);
    const mode: number = volume.secret.defaultMode;
    expect(mode & 0o007, 'no access for others').toBe(0);
    expect(mode & 0o040, 'group read').toBe(0o040);
    expect(mode & 0o222, 'read-only').toBe(0);
    expect(pod.securityContext.fsGroup).toBe(effective(sidecache, 'runAsGroup'));
    expect(sidecache.volumeMounts?.find((m) => m.name === volume.name)?.readOnly).toBe(true);
  });
});

describe('examples/kubernetes/sidecache.yaml: the PodMonitor', () => {
  const monitor = one(docs, 'PodMonitor');
  const labels = one(docs, 'Deployment').spec.template.metadata.labels;

  it("selects the pod's labels", () => {
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) expect(labels[key], key).toBe(value);
  });

  it('scrapes /metrics on a port name that the pod declares', () => {
    const names = containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
    for (const endpoint of monitor.spec.podMetricsEndpoints) {
      expect(names).toContain(endpoint.port);
      expect(endpoint.path).toBe('/metrics');
    }
  });
});
