{{/* Names, labels and the per-mode decisions every template shares. */}}
{{- define "accessbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "accessbot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "accessbot.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "accessbot.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "accessbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "accessbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "accessbot.labels" -}}
{{ include "accessbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "accessbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "accessbot.postgresql" -}}
{{- if eq .Values.database.mode "postgresql" -}}true{{- end -}}
{{- end -}}

{{/* SQLite keeps one process on one ReadWriteOnce volume; PostgreSQL runs any number of replicas. */}}
{{- define "accessbot.replicas" -}}
{{- if include "accessbot.postgresql" . -}}{{ .Values.replicaCount }}{{- else -}}1{{- end -}}
{{- end -}}

{{- define "accessbot.claimName" -}}
{{- default (printf "%s-data" (include "accessbot.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* The environment of the bot and of the migration job: secrets by reference, the database by mode. */}}
{{- define "accessbot.env" -}}
- name: ACCESSBOT_CONFIG
  value: /etc/accessbot/config.yaml
- name: ACCESSBOT_PUBLIC_URL
  value: {{ required "publicUrl is required (where browsers and Slack reach the bot)" .Values.publicUrl | quote }}
{{- if include "accessbot.postgresql" . }}
- name: ACCESSBOT_DATABASE
  valueFrom:
    secretKeyRef:
      name: {{ required "database.postgresql.urlSecret.name is required in postgresql mode" .Values.database.postgresql.urlSecret.name }}
      key: {{ .Values.database.postgresql.urlSecret.key }}
{{- else }}
- name: ACCESSBOT_DATABASE
  value: {{ .Values.database.sqlite.path | quote }}
{{- end }}
{{- end -}}

{{- define "accessbot.envFrom" -}}
- secretRef:
    name: {{ required "envSecret is required (the Secret holding the bot's tokens and keys)" .Values.envSecret }}
{{- end -}}
