{{/*
A Ray node's pod spec. `root`: the chart's context; `group`: head or worker group values; `gpus`:
nvidia.com/gpu per pod. The object store's tmpfs is sized to the store, plus /dev/shm for Ray's own use.
*/}}
{{- define "lfr.rayPodSpec" -}}
{{- $root := .root -}}
{{- $group := .group -}}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $group.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $group.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: ray
    image: {{ include "lfr.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    env:
      {{- include "lfr.secretEnv" $root | nindent 6 }}
      {{- include "lfr.rayAuthEnv" $root | nindent 6 }}
    ports:
      - {name: metrics, containerPort: {{ $root.Values.metrics.rayPort }}}
    {{- /* KubeRay's default probes call wget, which the slim image lacks: the same checks over HTTP. */}}
    readinessProbe:
      httpGet: {path: /api/local_raylet_healthz, port: 52365}
      periodSeconds: 10
      timeoutSeconds: 2
      failureThreshold: 10
    livenessProbe:
      httpGet: {path: /api/local_raylet_healthz, port: 52365}
      initialDelaySeconds: 30
      periodSeconds: 10
      timeoutSeconds: 2
      failureThreshold: 120
    resources:
      requests:
        {{- toYaml $group.resources.requests | nindent 8 }}
      limits:
        {{- toYaml $group.resources.limits | nindent 8 }}
        {{- if gt (int .gpus) 0 }}
        nvidia.com/gpu: {{ .gpus }}
        {{- end }}
    securityContext:
      {{- include "lfr.containerSecurity" $root | nindent 6 }}
    volumeMounts:
      {{- include "lfr.configMount" $root | nindent 6 }}
      - name: ray-objects
        mountPath: /lfr-ray-objects
      - name: dshm
        mountPath: /dev/shm
      - name: lfr-home
        mountPath: /var/lib/lfr
volumes:
  {{- include "lfr.configVolume" $root | nindent 2 }}
  - name: tmp
    emptyDir: {}
  - name: ray-objects
    emptyDir:
      medium: Memory
      sizeLimit: {{ $root.Values.ray.objectStoreMemory }}
  - name: dshm
    emptyDir:
      medium: Memory
  - name: lfr-home
    emptyDir: {}
{{- end -}}

{{/* A Kubernetes quantity (Gi, Mi, G, M or bytes) in bytes, for `ray start --object-store-memory`. */}}
{{- define "lfr.bytes" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Gi" $q -}}{{ mul (trimSuffix "Gi" $q | int64) 1073741824 }}
{{- else if hasSuffix "Mi" $q -}}{{ mul (trimSuffix "Mi" $q | int64) 1048576 }}
{{- else if hasSuffix "G" $q -}}{{ mul (trimSuffix "G" $q | int64) 1000000000 }}
{{- else if hasSuffix "M" $q -}}{{ mul (trimSuffix "M" $q | int64) 1000000 }}
{{- else -}}{{ $q | int64 }}
{{- end -}}
{{- end -}}
