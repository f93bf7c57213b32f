{{/* The chart name, or nameOverride. */}}
{{- define "vireo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: "<release>-vireo", or just the release name when it contains "vireo". */}}
{{- define "vireo.fullname" -}}
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

{{- define "vireo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "ctx" $ "component" "controller").
They never change across upgrades: a Deployment's selector is immutable.
*/}}
{{- define "vireo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vireo.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The standard labels of an object of one component. Call with (dict "ctx" $ "component" "controller"). */}}
{{- define "vireo.labels" -}}
helm.sh/chart: {{ include "vireo.chart" .ctx }}
{{ include "vireo.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vireo
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "vireo.controller.fullname" -}}
{{- printf "%s-controller" (include "vireo.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vireo.hostsim.fullname" -}}
{{- printf "%s-hostsim" (include "vireo.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Lease the controller replicas elect a leader on (and the only one its Role may read or renew). */}}
{{- define "vireo.leaderElectionID" -}}
{{- include "vireo.controller.fullname" . }}
{{- end }}

{{- define "vireo.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "vireo.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the simulated hosts' bearer token. */}}
{{- define "vireo.hostsim.tokenSecretName" -}}
{{- default (printf "%s-token" (include "vireo.hostsim.fullname" .)) .Values.hostsim.token.existingSecret }}
{{- end }}

{{- define "vireo.hostsim.tokenKey" -}}
{{- if .Values.hostsim.token.existingSecret }}{{ .Values.hostsim.token.key }}{{ else }}token{{ end }}
{{- end }}

{{- define "vireo.hostsim.url" -}}
{{- printf "http://%s:%d" (include "vireo.hostsim.fullname" .) (int .Values.hostsim.service.port) }}
{{- end }}

{{- define "vireo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the token is mounted in both pods; the file is always named "token". */}}
{{- define "vireo.tokenDir" -}}
/etc/vireo/hostsim-token
{{- end }}

{{/* The volume of the token Secret, shared by both pods. */}}
{{- define "vireo.tokenVolume" -}}
- name: hostsim-token
  secret:
    secretName: {{ include "vireo.hostsim.tokenSecretName" . }}
    # 0440: the token is readable by the pod's group (fsGroup) and nobody else.
    defaultMode: 288
    items:
      - key: {{ include "vireo.hostsim.tokenKey" . }}
        path: token
{{- end }}
