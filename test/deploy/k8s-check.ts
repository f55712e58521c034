/**
 * A small structural check of rendered Kubernetes objects, standing in for validation
 * against the Kubernetes JSON schemas (kubernetes-models / ajv are not installed here):
 * required fields and known field names of the kinds our manifests use, and every
 * reference between objects (selectors, named ports, volumes, ConfigMaps, Secrets, PVCs).
 * Returns the problems, each naming the object and the field path.
 */
export type K8sObject = { apiVersion?: string; kind?: string; metadata?: { name?: string; labels?: Record<string, string> }; [key: string]: unknown };

const KINDS: Record<string, string> = {
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
};

/** Field names the API accepts (the subset of each schema's properties our manifests may use). */
const FIELDS: Record<string, string[]> = {
  ConfigMap: ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable'],
  Secret: ['apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'],
  Service: ['apiVersion', 'kind', 'metadata', 'spec'],
  PersistentVolumeClaim: ['apiVersion', 'kind', 'metadata', 'spec'],
  Deployment: ['apiVersion', 'kind', 'metadata', 'spec'],
  StatefulSet: ['apiVersion', 'kind', 'metadata', 'spec'],
  ServiceMonitor: ['apiVersion', 'kind', 'metadata', 'spec'],
  metadata: ['name', 'namespace', 'labels', 'annotations'],
  DeploymentSpec: ['replicas', 'selector', 'template', 'strategy', 'minReadySeconds', 'revisionHistoryLimit', 'progressDeadlineSeconds', 'paused'],
  StatefulSetSpec: ['replicas', 'selector', 'template', 'serviceName', 'volumeClaimTemplates', 'podManagementPolicy', 'updateStrategy', 'minReadySeconds', 'persistentVolumeClaimRetentionPolicy', 'revisionHistoryLimit', 'ordinals'],
  PodSpec: ['containers', 'initContainers', 'volumes', 'securityContext', 'terminationGracePeriodSeconds', 'serviceAccountName', 'nodeSelector', 'affinity', 'tolerations', 'priorityClassName', 'topologySpreadConstraints', 'imagePullSecrets', 'enableServiceLinks'],
  Container: ['name', 'image', 'imagePullPolicy', 'command', 'args', 'env', 'envFrom', 'ports', 'startupProbe', 'livenessProbe', 'readinessProbe', 'resources', 'securityContext', 'volumeMounts', 'workingDir', 'lifecycle', 'terminationMessagePolicy'],
  Probe: ['httpGet', 'tcpSocket', 'exec', 'grpc', 'initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'],
  ServiceSpec: ['selector', 'ports', 'type', 'clusterIP', 'sessionAffinity', 'publishNotReadyAddresses'],
  PvcSpec: ['accessModes', 'resources', 'storageClassName', 'volumeMode', 'selector', 'volumeName', 'dataSource'],
  ServiceMonitorSpec: ['selector', 'endpoints', 'namespaceSelector', 'jobLabel', 'targetLabels', 'podTargetLabels'],
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

export function checkObjects(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const names = (kind: string) => new Set(byKind(kind).map((o) => o.metadata?.name));

  for (const object of objects) {
    const where = `${object.kind ?? '?'}/${object.metadata?.name ?? '?'}`;
    const problem = (path: string, message: string) => problems.push(`${where} ${path}: ${message}`);
    const known = (value: unknown, fields: string[], path: string) => {
      if (!isObj(value)) return problem(path, 'must be an object');
      for (const key of Object.keys(value)) if (!fields.includes(key)) problem(`${path}.${key}`, 'unknown field');
    };
    const required = (value: unknown, path: string) => {
      if (value === undefined || value === null || value === '') problem(path, 'is required');
    };

    if (!object.kind || !KINDS[object.kind]) { problem('kind', `unknown kind (known: ${Object.keys(KINDS).join(', ')})`); continue; }
    if (object.apiVersion !== KINDS[object.kind]) problem('apiVersion', `must be ${KINDS[object.kind]}`);
    known(object, FIELDS[object.kind], '');
    known(object.metadata, FIELDS.metadata, 'metadata');
    if (!DNS_SUBDOMAIN.test(object.metadata?.name ?? '')) problem('metadata.name', 'must be a DNS-1123 subdomain');
    const spec = object.spec as Obj | undefined;

    if (object.kind === 'ConfigMap' || object.kind === 'Secret') {
      const data = (object.data ?? object.stringData) as Obj | undefined;
      if (!isObj(data)) problem('data', 'is required');
      else for (const [key, value] of Object.entries(data)) if (typeof value !== 'string') problem(`data.${key}`, 'must be a string');
    }

    if (object.kind === 'Deployment' || object.kind === 'StatefulSet') {
      known(spec, FIELDS[`${object.kind}Spec`], 'spec');
      if (!isObj(spec)) continue;
      if (object.kind === 'StatefulSet') required(spec.serviceName, 'spec.serviceName');
      const selector = (spec.selector as Obj | undefined)?.matchLabels as Record<string, string> | undefined;
      const template = spec.template as Obj | undefined;
      const labels = ((template?.metadata as Obj | undefined)?.labels ?? {}) as Record<string, string>;
      if (!selector || !Object.keys(selector).length) problem('spec.selector.matchLabels', 'is required');
      else for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) problem('spec.selector.matchLabels', `${k}=${v} is not a label of spec.template`);
      const pod = template?.spec;
      known(pod, FIELDS.PodSpec, 'spec.template.spec');
      if (!isObj(pod)) continue;
      const volumes = new Set([
        ...list(pod.volumes).map((v) => v.name),
        ...list(spec.volumeClaimTemplates).map((t) => (t.metadata as Obj | undefined)?.name),
      ]);
      for (const volume of list(pod.volumes)) {
        const configMap = (volume.configMap as Obj | undefined)?.name;
        const secret = (volume.secret as Obj | undefined)?.secretName;
        const claim = (volume.persistentVolumeClaim as Obj | undefined)?.claimName;
        if (configMap && !names('ConfigMap').has(configMap as string)) problem(`volumes.${volume.name}`, `ConfigMap ${configMap} is not among the objects`);
        if (secret && !names('Secret').has(secret as string)) problem(`volumes.${volume.name}`, `Secret ${secret} is not among the objects`);
        if (claim && !names('PersistentVolumeClaim').has(claim as string)) problem(`volumes.${volume.name}`, `PersistentVolumeClaim ${claim} is not among the objects`);
      }
      const containers = list(pod.containers);
      if (!containers.length) problem('spec.template.spec.containers', 'needs at least one container');
      for (const container of containers) {
        const at = `containers.${container.name}`;
        known(container, FIELDS.Container, at);
        if (!DNS_LABEL.test(String(container.name ?? ''))) problem(`${at}.name`, 'must be a DNS-1123 label');
        required(container.image, `${at}.image`);
        const ports = new Set(list(container.ports).map((p) => p.name));
        for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
          const value = container[probe] as Obj | undefined;
          if (!value) { problem(`${at}.${probe}`, 'is required (the service answers /healthz and /readyz)'); continue; }
          known(value, FIELDS.Probe, `${at}.${probe}`);
          const get = value.httpGet as Obj | undefined;
          if (!get?.path || !get.port) problem(`${at}.${probe}.httpGet`, 'needs path and port');
          else if (typeof get.port === 'string' && !ports.has(get.port)) problem(`${at}.${probe}.httpGet.port`, `no container port named ${get.port}`);
        }
        const requests = ((container.resources as Obj | undefined)?.requests ?? {}) as Obj;
        for (const resource of ['cpu', 'memory']) {
          if (!QUANTITY.test(String(requests[resource] ?? ''))) problem(`${at}.resources.requests.${resource}`, 'is required, a quantity such as 250m or 256Mi');
        }
        for (const mount of list(container.volumeMounts)) if (!volumes.has(mount.name)) problem(`${at}.volumeMounts.${mount.name}`, 'no such volume');
        for (const from of list(container.envFrom)) {
          const secret = (from.secretRef as Obj | undefined)?.name;
          if (secret && !names('Secret').has(secret as string)) problem(`${at}.envFrom`, `Secret ${secret} is not among the objects`);
        }
      }
    }

    if (object.kind === 'Service') {
      known(spec, FIELDS.ServiceSpec, 'spec');
      const selector = (spec?.selector ?? {}) as Record<string, string>;
      const pods = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
      const matching = pods.filter((w) => {
        const labels = (((w.spec as Obj).template as Obj).metadata as Obj).labels as Record<string, string>;
        return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
      });
      if (!matching.length) problem('spec.selector', 'selects no workload');
      for (const port of list(spec?.ports)) {
        if (typeof port.targetPort !== 'string') continue;
        for (const w of matching) {
          const named = list(((((w.spec as Obj).template as Obj).spec as Obj).containers as unknown[]).flatMap((c) => list((c as Obj).ports))).map((p) => p.name);
          if (!named.includes(port.targetPort)) problem(`spec.ports.${port.name}`, `targetPort ${port.targetPort} is not a port of ${w.kind}/${w.metadata?.name}`);
        }
      }
    }

    if (object.kind === 'PersistentVolumeClaim') {
      known(spec, FIELDS.PvcSpec, 'spec');
      if (!QUANTITY.test(String((((spec?.resources as Obj | undefined)?.requests ?? {}) as Obj).storage ?? ''))) problem('spec.resources.requests.storage', 'is required');
    }

    if (object.kind === 'ServiceMonitor') {
      known(spec, FIELDS.ServiceMonitorSpec, 'spec');
      const selector = ((spec?.selector as Obj | undefined)?.matchLabels ?? {}) as Record<string, string>;
      const services = byKind('Service').filter((s) => Object.entries(selector).every(([k, v]) => s.metadata?.labels?.[k] === v));
      if (!services.length) problem('spec.selector', 'selects no Service');
      for (const endpoint of list(spec?.endpoints)) {
        for (const s of services) {
          if (!list((s.spec as Obj).ports).some((p) => p.name === endpoint.port)) problem('spec.endpoints', `port ${endpoint.port} is not a port of Service/${s.metadata?.name}`);
        }
      }
    }
  }
  return problems;
}

/** Where kubernetes-models keeps each kind's model (validate() checks the object against the Kubernetes JSON schema). */
const MODEL_MODULES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

/**
 * Validation against the Kubernetes JSON schemas through the npm package kubernetes-models
 * (and @kubernetes-models/prometheus-operator for the ServiceMonitor), when installed;
 * otherwise `skipped` says what to install.
 */
export async function schemaProblems(objects: K8sObject[]): Promise<{ problems: string[]; skipped: string[] }> {
  const problems: string[] = [];
  const skipped = new Set<string>();
  for (const object of objects) {
    const module = MODEL_MODULES[object.apiVersion ?? ''];
    if (!module) { skipped.add(`no model for ${object.apiVersion}`); continue; }
    let models: Record<string, new (data: unknown) => { validate(): void }>;
    try {
      models = await import(module);
    } catch {
      skipped.add(`npm package ${module.split('/').slice(0, module.startsWith('@') ? 2 : 1).join('/')} is not installed`);
      continue;
    }
    const Model = models[object.kind ?? ''];
    if (!Model) { problems.push(`${object.kind}/${object.metadata?.name}: ${module} has no kind ${object.kind}`); continue; }
    try {
      new Model(object).validate();
    } catch (error) {
      problems.push(`${object.kind}/${object.metadata?.name}: ${(error as Error).message}`);
    }
  }
  return { problems, skipped: [...skipped] };
}
