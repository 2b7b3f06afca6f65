{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "llmproxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name: <release>-llmproxy, or the release name when it already contains the chart name. */}}
{{- define "llmproxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "llmproxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmproxy.labels" -}}
helm.sh/chart: {{ include "llmproxy.chart" . }}
{{ include "llmproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The bundled Redis Stack: its name and labels. */}}
{{- define "llmproxy.redis.fullname" -}}
{{- printf "%s-redis" (include "llmproxy.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmproxy.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmproxy.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmproxy.redis.labels" -}}
helm.sh/chart: {{ include "llmproxy.chart" . }}
{{ include "llmproxy.redis.selectorLabels" . }}
app.kubernetes.io/component: redis
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Exactly one Redis: the bundled StatefulSet or an external URL (inline or from a Secret). Without one the
proxy would start an embedded Redis per pod, which is not what a Deployment of several replicas wants.
*/}}
{{- define "llmproxy.redis.check" -}}
{{- $sentinel := and (eq .Values.redis.external.mode "sentinel") .Values.redis.external.sentinels }}
{{- $external := or .Values.redis.external.url .Values.redis.external.existingSecret $sentinel }}
{{- if not (has .Values.redis.external.mode (list "standalone" "sentinel" "cluster")) }}
{{- fail "redis.external.mode is standalone, sentinel or cluster" }}
{{- end }}
{{- if and .Values.redis.bundled.enabled $external }}
{{- fail "set either redis.bundled.enabled or redis.external.url/existingSecret, not both" }}
{{- end }}
{{- if not (or .Values.redis.bundled.enabled $external) }}
{{- fail "set redis.bundled.enabled=true or redis.external.url (or redis.external.existingSecret)" }}
{{- end }}
{{- end }}
