{{/* Names, labels and the pieces every workload shares. */}}

{{- define "exocorp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: the release name, plus the chart name unless it is already in it. */}}
{{- define "exocorp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* An object's metadata.annotations: its own (call with (dict "root" $ "own" $map)) over
commonAnnotations; nothing when both are empty. */}}
{{- define "exocorp.annotations" -}}
{{- $all := merge (deepCopy (default dict .own)) (deepCopy (default dict .root.Values.commonAnnotations)) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "exocorp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "exocorp.labels" -}}
helm.sh/chart: {{ include "exocorp.chart" . }}
app.kubernetes.io/name: {{ include "exocorp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: exocorp
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "operator"). */}}
{{- define "exocorp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "exocorp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "exocorp.componentLabels" -}}
{{ include "exocorp.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "exocorp.operator.fullname" -}}
{{- printf "%s-operator" (include "exocorp.fullname" .) }}
{{- end }}

{{- define "exocorp.gateway.fullname" -}}
{{- printf "%s-gateway" (include "exocorp.fullname" .) }}
{{- end }}

{{- define "exocorp.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "exocorp.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create=false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "exocorp.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "exocorp.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create=false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "exocorp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Default runbook base in files/alerts.yaml; the PrometheusRule rewrites it to the configured one. */}}
{{- define "exocorp.defaultRunbookBaseURL" -}}
https://github.com/exocorp/exocorp/blob/main/docs/runbooks
{{- end }}

{{/* Name of the gateway's SQLite claim. */}}
{{- define "exocorp.gateway.claimName" -}}
{{- default (printf "%s-data" (include "exocorp.gateway.fullname" .)) .Values.database.sqlite.persistence.existingClaim }}
{{- end }}

{{/* Cross-field rules the schema cannot explain well: fail with what to do instead. */}}
{{- define "exocorp.validate" -}}
{{- if and (eq .Values.database.type "sqlite") (gt (int .Values.gateway.replicaCount) 1) }}
{{- fail (printf "gateway.replicaCount=%d needs database.type=postgresql: SQLite is one file on a ReadWriteOnce volume and allows exactly one gateway replica. Set gateway.replicaCount=1, or set database.type=postgresql with database.postgresql.existingSecret." (int .Values.gateway.replicaCount)) }}
{{- end }}
{{- if and (eq .Values.database.type "postgresql") (not .Values.database.postgresql.existingSecret) }}
{{- fail "database.type=postgresql needs database.postgresql.existingSecret: the name of a Secret whose key database.postgresql.urlKey (default \"url\") holds postgresql+asyncpg://user:password@host:5432/database." }}
{{- end }}
{{- if and .Values.platformOwner.email (not .Values.platformOwner.existingSecret) }}
{{- fail "platformOwner.email needs platformOwner.existingSecret: the name of a Secret whose key platformOwner.passwordKey (default \"password\") holds the first platform owner's password." }}
{{- end }}
{{- $gw := .Values.gateway }}
{{- if eq (int $gw.port) (int $gw.metricsPort) }}
{{- fail (printf "gateway.metricsPort=%d equals gateway.port: /metrics must have a port of its own, which the Service and the Ingress do not route." (int $gw.metricsPort)) }}
{{- end }}
{{- if and (gt (int $gw.port) (int $gw.metricsPort)) (lt (int $gw.port) (add $gw.metricsPort $gw.processes)) }}
{{- fail (printf "gateway.port=%d is among the metrics ports of the %d gateway processes (gateway.metricsPort to gateway.metricsPort + gateway.processes - 1): move gateway.metricsPort." (int $gw.port) (int $gw.processes)) }}
{{- end }}
{{- if gt (int (add $gw.metricsPort $gw.processes)) 65536 }}
{{- fail (printf "gateway.metricsPort=%d leaves no room for the metrics ports of %d gateway processes (gateway.metricsPort + gateway.processes - 1 must be at most 65535)." (int $gw.metricsPort) (int $gw.processes)) }}
{{- end }}
{{- if and .Values.monitoring.podMonitor.enabled .Values.monitoring.serviceMonitor.enabled }}
{{- fail "enable at most one of monitoring.podMonitor and monitoring.serviceMonitor: both would scrape every pod twice." }}
{{- end }}
{{- end }}

{{/* The /metrics port of each gateway process, as a YAML list of {name, port}: process i serves
its own counters on gateway.metricsPort + i (`--processes`), so each is scraped apart. */}}
{{- define "exocorp.gateway.metricsPorts" -}}
{{- range $i := until (int .Values.gateway.processes) }}
- name: {{ if eq $i 0 }}metrics{{ else }}metrics-{{ $i }}{{ end }}
  port: {{ add $.Values.gateway.metricsPort $i }}
{{- end }}
{{- end }}

{{/* Marks the Services that expose a metrics port (what a ServiceMonitor selects, besides the
component: the gateway's public Service carries the same component labels). */}}
{{- define "exocorp.metricsServiceLabel" -}}
exocorp.io/metrics: "true"
{{- end }}

{{/* Egress every component needs: DNS and the API server. */}}
{{- define "exocorp.netpol.baseEgress" -}}
# DNS (any resolver: kube-dns/CoreDNS or node-local).
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# The Kubernetes API server (its address is outside the pod network, so by port).
- ports:
    {{- range .Values.networkPolicy.apiServerPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}

{{/* The URL browsers use: gateway.publicBaseURL, else the Ingress host, else nothing. */}}
{{- define "exocorp.gateway.publicBaseURL" -}}
{{- $gw := .Values.gateway }}
{{- if $gw.publicBaseURL }}
{{- $gw.publicBaseURL | trimSuffix "/" }}
{{- else if $gw.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" $gw.ingress.tls.enabled) $gw.ingress.host }}
{{- end }}
{{- end }}
