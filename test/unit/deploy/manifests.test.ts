/**
 * deploy/ checked offline (no container engine or cluster here): the Kubernetes manifests parse and
 * hang together (selectors, ports, probes on /health, GPU resources, the InferencePool v1 fields, env
 * variables that are real flags), and the Dockerfiles use pinned base images and copy files that exist.
 * Where Debian's `yamllint` is installed (apt-get install yamllint), it lints the manifests too, with
 * deploy/.yamllint; hadolint and kubeconform come from neither npm nor Debian, so they cannot run here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName } from '../../../src/cli/args.ts';
import { SERVE_FLAGS } from '../../../src/config.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';
import { parseYamlDocuments, type Yaml } from './yaml-subset.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
type Obj = { [key: string]: Yaml };

const obj = (value: Yaml | undefined, what: string): Obj => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value;
};
const list = (value: Yaml | undefined, what: string): Yaml[] => {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
};
const at = (value: Yaml | undefined, path: string): Yaml | undefined => {
  let current: Yaml | undefined = value;
  for (const key of path.split('.')) current = current === undefined || current === null || typeof current !== 'object' || Array.isArray(current) ? undefined : current[key];
  return current;
};

function manifests(): Array<{ file: string; doc: Obj }> {
  const dir = join(DEPLOY, 'k8s');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) => parseYamlDocuments(readFileSync(join(dir, file), 'utf-8'), file).map((doc) => ({ file, doc: obj(doc, file) })));
}

const KNOWN_KINDS: Record<string, string> = {
  Deployment: 'apps/v1',
  Service: 'v1',
  InferencePool: 'inference.networking.k8s.io/v1',
  HTTPRoute: 'gateway.networking.k8s.io/v1',
};
const SERVE_ENV = new Set(SERVE_FLAGS.map((spec) => envName(spec.flag)));
const HF_ENV = new Set(['HF_HOME', 'HF_HUB_CACHE', 'HF_TOKEN', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'UPDRAFT_CONFIG']);

describe('Kubernetes manifests (deploy/k8s)', () => {
  const all = manifests();
  const byKind = (kind: string) => all.filter((m) => m.doc['kind'] === kind);

  it('are documents of known kinds and API versions, each named', () => {
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const { file, doc } of all) {
      const kind = String(doc['kind']);
      expect(KNOWN_KINDS[kind], `${file}: kind ${kind}`).toBeDefined();
      expect(doc['apiVersion'], `${file}: ${kind}`).toBe(KNOWN_KINDS[kind]);
      expect(at(doc, 'metadata.name'), file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('run `updraft serve` with probes on /health, a named http port and env variables that are real settings', () => {
    const deployments = byKind('Deployment');
    expect(deployments.map((d) => d.file).sort()).toEqual(['updraft-cpu.yaml', 'updraft-cuda.yaml']);
    for (const { file, doc } of deployments) {
      const labels = obj(at(doc, 'spec.template.metadata.labels'), `${file} pod labels`);
      for (const [key, value] of Object.entries(obj(at(doc, 'spec.selector.matchLabels'), `${file} selector`))) expect(labels[key], file).toBe(value);
      const [container] = list(at(doc, 'spec.template.spec.containers'), `${file} containers`).map((c) => obj(c, 'container'));
      expect(list(container!['args'], 'args')[0]).toBe('serve');
      const ports = list(container!['ports'], 'ports').map((p) => obj(p, 'port'));
      expect(ports).toContainEqual({ name: 'http', containerPort: 8000 });
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        expect(at(container, `${probe}.httpGet`), `${file} ${probe}`).toEqual({ path: '/health', port: 'http' });
      }
      const env = list(container!['env'], 'env').map((e) => obj(e, 'env entry'));
      for (const entry of env) {
        const name = String(entry['name']);
        expect(SERVE_ENV.has(name) || HF_ENV.has(name), `${file}: ${name} is neither an UPDRAFT_ flag variable nor a Hugging Face one`).toBe(true);
      }
      const value = (name: string) => env.find((e) => e['name'] === name)?.['value'];
      expect(value('UPDRAFT_HOST'), `${file} must listen beyond loopback`).toBe('0.0.0.0');
      expect(value('UPDRAFT_PORT')).toBe('8000');
      expect(at(doc, 'spec.template.metadata.annotations')).toMatchObject({ 'prometheus.io/path': '/metrics', 'prometheus.io/port': '8000' });
      const mounts = list(container!['volumeMounts'], 'volumeMounts').map((m) => obj(m, 'mount'));
      const volumes = list(at(doc, 'spec.template.spec.volumes'), 'volumes').map((v) => obj(v, 'volume'));
      for (const mount of mounts) expect(volumes.map((v) => v['name'])).toContain(mount['name']);
      expect(mounts.map((m) => m['mountPath'])).toContain(value('HF_HOME'));
    }
  });

  it('give the CUDA variant a GPU and the CPU variant none', () => {
    const container = (file: string) => obj(list(at(byKind('Deployment').find((d) => d.file === file)!.doc, 'spec.template.spec.containers'), 'containers')[0], 'container');
    const cuda = container('updraft-cuda.yaml');
    expect(at(cuda, 'resources.limits')).toMatchObject({ 'nvidia.com/gpu': 1 });
    expect(at(cuda, 'resources.requests')).toMatchObject({ 'nvidia.com/gpu': 1 });
    expect(list(cuda['env'], 'env')).toContainEqual({ name: 'UPDRAFT_DEVICE', value: 'cuda' });
    expect(String(cuda['image'])).toMatch(/:cuda$/);
    const cpu = container('updraft-cpu.yaml');
    expect(JSON.stringify(cpu)).not.toContain('nvidia.com/gpu');
    expect(list(cpu['env'], 'env')).toContainEqual({ name: 'UPDRAFT_DEVICE', value: 'cpu' });
  });

  it('put a Service in front of each Deployment', () => {
    for (const { doc: deployment } of byKind('Deployment')) {
      const name = at(deployment, 'metadata.name');
      const service = byKind('Service').find((s) => at(s.doc, 'metadata.name') === name);
      expect(service, `a Service for ${String(name)}`).toBeDefined();
      expect(at(service!.doc, 'spec.selector')).toEqual(at(deployment, 'spec.selector.matchLabels'));
      expect(list(at(service!.doc, 'spec.ports'), 'ports')).toContainEqual({ name: 'http', port: 8000, targetPort: 'http' });
    }
  });

  it('define an InferencePool (v1 fields) over the GPU pods and an HTTPRoute to it', () => {
    const [pool] = byKind('InferencePool');
    const gpuPods = at(byKind('Deployment').find((d) => d.file === 'updraft-cuda.yaml')!.doc, 'spec.template.metadata.labels');
    expect(at(pool!.doc, 'spec.selector.matchLabels')).toEqual(gpuPods);
    expect(at(pool!.doc, 'spec.targetPorts')).toEqual([{ number: 8000 }]);
    const picker = obj(at(pool!.doc, 'spec.endpointPickerRef'), 'endpointPickerRef');
    expect(picker['name']).toBe('updraft-epp');
    expect(picker['port']).toEqual({ number: 9002 });
    expect(['FailOpen', 'FailClose']).toContain(picker['failureMode']);
    // Only the fields of inference.networking.k8s.io/v1 (older alpha fields would be rejected).
    expect(Object.keys(obj(at(pool!.doc, 'spec'), 'spec')).sort()).toEqual(['endpointPickerRef', 'selector', 'targetPorts']);

    const [route] = byKind('HTTPRoute');
    const backends = list(at(obj(list(at(route!.doc, 'spec.rules'), 'rules')[0], 'rule'), 'backendRefs'), 'backendRefs');
    expect(backends).toEqual([{ group: 'inference.networking.k8s.io', kind: 'InferencePool', name: at(pool!.doc, 'metadata.name') }]);
  });
});

describe('Dockerfiles (deploy/Dockerfile.*)', () => {
  const dockerfiles = ['Dockerfile.cpu', 'Dockerfile.cuda'];

  it.each(dockerfiles)('%s: pinned base images, sources that exist, the addon where the loader looks, real settings', (name) => {
    const text = readFileSync(join(DEPLOY, name), 'utf-8').replace(/\\\n/g, ' ');
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const stages = new Set<string>();
    for (const line of lines.filter((l) => /^FROM /i.test(l))) {
      const [, image, stage] = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line) ?? [];
      expect(image, line).toBeDefined();
      expect(image, `${name}: ${line} must pin a version`).toMatch(/^[a-z0-9./-]+:(?!latest)[a-z0-9._-]*\d[a-z0-9._-]*(@sha256:[0-9a-f]{64})?$/);
      if (stage) stages.add(stage);
    }
    expect(stages.has('build')).toBe(true);
    for (const line of lines.filter((l) => /^COPY /i.test(l))) {
      const parts = line.split(/\s+/).slice(1);
      const from = parts.find((p) => p.startsWith('--from='));
      const args = parts.filter((p) => !p.startsWith('--'));
      if (from) {
        expect(stages.has(from.slice('--from='.length)) || from.includes(':'), `${name}: ${line}`).toBe(true);
        continue;
      }
      for (const source of args.slice(0, -1)) expect(existsSync(join(REPO_ROOT, source)), `${name}: COPY ${source} (from the repository root)`).toBe(true);
    }
    // The runtime stage has the addon where src/device/binding.ts looks first, and the CLI entry point.
    expect(text).toContain('./build/native/Release/updraft.node');
    expect(readFileSync(join(REPO_ROOT, 'src/device/binding.ts'), 'utf-8')).toContain("'build/native/Release/updraft.node'");
    expect(text).toMatch(/ENTRYPOINT \["node", "bin\/updraft\.js"\]/);
    for (const [, variable] of text.matchAll(/\b(UPDRAFT_[A-Z_]+)=/g)) {
      expect(SERVE_ENV.has(variable!) || variable === 'UPDRAFT_CUDA', `${name}: ${variable}`).toBe(true);
    }
    expect(text).toMatch(/EXPOSE 8000/);
    expect(text).toMatch(/HEALTHCHECK .*\/health/);
    expect(existsSync(join(DEPLOY, `${name}.dockerignore`))).toBe(true);
  });

  it('build the CUDA backend only in the CUDA image, and refuse to build it silently without nvcc', () => {
    expect(readFileSync(join(DEPLOY, 'Dockerfile.cuda'), 'utf-8')).toMatch(/ENV UPDRAFT_CUDA=ON/);
    expect(readFileSync(join(DEPLOY, 'Dockerfile.cpu'), 'utf-8')).toMatch(/ENV UPDRAFT_CUDA=OFF/);
    expect(readFileSync(join(REPO_ROOT, 'native/CMakeLists.txt'), 'utf-8')).toMatch(/UPDRAFT_CUDA must be AUTO, ON or OFF/);
  });
});

const YAMLLINT = ['/usr/bin/yamllint', '/usr/local/bin/yamllint'].find((path) => existsSync(path)) ?? null;

describe(`yamllint on deploy/k8s${YAMLLINT ? '' : ' (skipped: yamllint is not installed; apt-get install yamllint)'}`, () => {
  it.skipIf(YAMLLINT === null)('finds nothing, warnings included, with deploy/.yamllint', () => {
    let output = '';
    try {
      output = execFileSync(YAMLLINT!, ['-s', '-f', 'parsable', '-c', join(DEPLOY, '.yamllint'), join(DEPLOY, 'k8s')], { encoding: 'utf-8' });
    } catch (error) {
      output = `${(error as { stdout?: string }).stdout ?? ''}${(error as Error).message}`;
    }
    expect(output).toBe('');
  });
});

describe('the YAML subset parser', () => {
  it('reads block and flow forms and refuses what it does not know', () => {
    expect(parseYamlDocuments('a: 1\nb:\n  - x: "y"\n    z: [1, two]\n  - plain\nc: {}\nd:\n- 1\n---\ne: 0.0.0.0 # comment\n')).toEqual([
      { a: 1, b: [{ x: 'y', z: [1, 'two'] }, 'plain'], c: {}, d: [1] },
      { e: '0.0.0.0' },
    ]);
    expect(() => parseYamlDocuments('a: &anchor 1\n')).toThrow(/unsupported/);
    expect(() => parseYamlDocuments('a: |\n  text\n')).toThrow(/unsupported/);
    expect(() => parseYamlDocuments('a: 1\na: 2\n')).toThrow(/duplicate key/);
    expect(() => parseYamlDocuments('a: 1\n   b: 2\n')).toThrow(/unexpected indentation/);
  });
});
