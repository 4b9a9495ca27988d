{{/* Names and labels shared by every object of a release. */}}
{{- define "lfr.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lfr.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lfr.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lfr.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* The Ray head's Service, which KubeRay names after the RayService. */}}
{{- define "lfr.rayHead" -}}
{{ include "lfr.fullname" . }}-head-svc
{{- end -}}

{{/* The secrets every lfr process needs, from the Secret the operator made (values: secrets). */}}
{{- define "lfr.secretEnv" -}}
- name: LFR_AUDIT_HMAC_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: {{ .Values.secrets.keys.auditHmacKey }}}
- name: LFR_MILVUS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: {{ .Values.secrets.keys.milvusToken }}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: {{ .Values.secrets.keys.databasePassword }}}
- name: PGSSLMODE
  value: {{ .Values.database.sslMode }}
- name: LFR_HOME
  value: /var/lib/lfr
{{- end -}}

{{/*
Ray token authentication (Ray >= 2.52), the same token on every Ray node and on the live run's Ray
Client, from the chart's Secret: a token KubeRay generates itself would be out of the live run's reach.
*/}}
{{- define "lfr.rayAuthEnv" -}}
{{- if .Values.ray.authToken -}}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.name }}, key: {{ .Values.secrets.keys.rayAuthToken }}}
{{- end -}}
{{- end -}}

{{/* Containers run as the image's user, read-only, with no capabilities. */}}
{{- define "lfr.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "lfr.configVolume" -}}
- name: config
  configMap:
    name: {{ include "lfr.fullname" . }}-config
{{- end -}}

{{- define "lfr.configMount" -}}
- name: config
  mountPath: /etc/lfr
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}
