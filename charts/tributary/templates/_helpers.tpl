{{/* Names, labels and small computed values shared by the templates. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "tributary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of every object: "<release>-tributary", or just the release name when it
already contains the chart name (release "tributary" gives "tributary", not
"tributary-tributary"). 63 characters: the limit of a label value and a DNS label.
*/}}
{{- define "tributary.fullname" -}}
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

{{- define "tributary.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "tributary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tributary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object the chart creates. */}}
{{- define "tributary.labels" -}}
helm.sh/chart: {{ include "tributary.chart" . }}
{{ include "tributary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tributary
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tributary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tributary.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tributary.leaseName" -}}
{{- default (include "tributary.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "tributary.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tributary.runnerImage" -}}
{{- printf "%s:%s" .Values.runner.image.repository (default .Chart.AppVersion .Values.runner.image.tag) }}
{{- end }}

{{/* Namespaces that get the runner ServiceAccount, one per line. */}}
{{- define "tributary.runnerNamespaces" -}}
{{- $default := default .Release.Namespace .Values.watchNamespace }}
{{- range (default (list $default) .Values.runner.serviceAccount.namespaces) }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Refuses value combinations that install but misbehave, with the reason. The schema
cannot express these across keys with a readable message.
*/}}
{{- define "tributary.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a Lease every replica acts and they race to create the same Jobs" }}
{{- end }}
{{- end }}

{{/* The metadata block of the CRDs: labels, and the keep policy (see values.yaml, crds.keep). */}}
{{- define "tributary.crdMetadata" -}}
metadata:
  labels:
    {{- include "tributary.labels" . | nindent 4 }}
  {{- if or .Values.crds.keep .Values.crds.annotations }}
  annotations:
    {{- if .Values.crds.keep }}
    # helm uninstall leaves the CRDs (and so every Pipeline and DataSource) in place.
    helm.sh/resource-policy: keep
    {{- end }}
    {{- with .Values.crds.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}

{{/*
A node selector map as the operator's --runner-node-selector flag: key=value pairs, comma
separated, in key order (stable across renders, so no Deployment rollout without a change).
*/}}
{{- define "tributary.nodeSelectorFlag" -}}
{{- $pairs := list }}
{{- range $key := keys . | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (index $ $key)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
