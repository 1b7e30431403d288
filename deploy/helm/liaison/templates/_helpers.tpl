{{/* Names and labels. */}}
{{- define "liaison.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "liaison.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: "<fullname>-<component>". */}}
{{- define "liaison.component" -}}
{{- printf "%s-%s" (include "liaison.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "liaison.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "liaison.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "liaison.selectorLabels" -}}
app.kubernetes.io/name: {{ include "liaison.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of a component: {root, component}. */}}
{{- define "liaison.componentLabels" -}}
{{ include "liaison.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "liaison.componentSelector" -}}
{{ include "liaison.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "liaison.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "liaison.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "liaison.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The database Secret is required: the processes keep no state. */}}
{{- define "liaison.databaseSecret" -}}
{{- required "database.existingSecret: the name of a Secret holding the PostgreSQL URL" .Values.database.existingSecret -}}
{{- end -}}

{{/* Where the Secrets are mounted. */}}
{{- define "liaison.secretsDir" -}}/var/run/secrets/liaison{{- end -}}

{{/*
Variables every process gets: the configuration file, the database URL from its
Secret, the secret files' paths, and extraEnv. Argument: the root context.
*/}}
{{- define "liaison.env" -}}
- name: LIAISON_CONFIG
  value: /etc/liaison/liaison.toml
- name: LIAISON_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "liaison.databaseSecret" . }}
      key: {{ .Values.database.key }}
{{- if .Values.meteringKek.existingSecret }}
- name: LIAISON_METERING__KEK_FILE
  value: {{ printf "%s/metering-kek/%s" (include "liaison.secretsDir" .) .Values.meteringKek.key | quote }}
{{- end }}
{{- if .Values.metricsToken.existingSecret }}
- name: LIAISON_METRICS__TOKEN_FILE
  value: {{ printf "%s/metrics-token/%s" (include "liaison.secretsDir" .) .Values.metricsToken.key | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every process gets (the config, /tmp, the Secrets). Argument: root. */}}
{{- define "liaison.volumes" -}}
- name: config
  configMap:
    name: {{ include "liaison.fullname" . }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.meteringKek.existingSecret }}
- name: metering-kek
  secret:
    secretName: {{ .Values.meteringKek.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.meteringKek.key }}
        path: {{ .Values.meteringKek.key }}
{{- end }}
{{- if .Values.metricsToken.existingSecret }}
- name: metrics-token
  secret:
    secretName: {{ .Values.metricsToken.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.metricsToken.key }}
        path: {{ .Values.metricsToken.key }}
{{- end }}
{{- range .Values.appCredentials }}
- name: {{ printf "app-%s" . | trunc 63 | trimSuffix "-" }}
  secret:
    secretName: {{ . }}
    defaultMode: 0400
{{- end }}
{{- range .Values.extraSecretMounts }}
- name: {{ .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0400
    {{- with .items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "liaison.volumeMounts" -}}
- name: config
  mountPath: /etc/liaison
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.meteringKek.existingSecret }}
- name: metering-kek
  mountPath: {{ include "liaison.secretsDir" . }}/metering-kek
  readOnly: true
{{- end }}
{{- if .Values.metricsToken.existingSecret }}
- name: metrics-token
  mountPath: {{ include "liaison.secretsDir" . }}/metrics-token
  readOnly: true
{{- end }}
{{- range .Values.appCredentials }}
- name: {{ printf "app-%s" . | trunc 63 | trimSuffix "-" }}
  mountPath: {{ include "liaison.secretsDir" $ }}/apps/{{ . }}
  readOnly: true
{{- end }}
{{- range .Values.extraSecretMounts }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod-level settings shared by every pod. Argument: root. */}}
{{- define "liaison.podCommon" -}}
serviceAccountName: {{ include "liaison.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod annotations: the config's checksum (a change rolls the pods) and podAnnotations. */}}
{{- define "liaison.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* preStop: wait for the endpoint to leave the Services before SIGTERM. */}}
{{- define "liaison.lifecycle" -}}
{{- if gt (int .Values.preStopSleepSeconds) 0 -}}
lifecycle:
  preStop:
    sleep:
      seconds: {{ int .Values.preStopSleepSeconds }}
{{- end }}
{{- end -}}

{{/*
A spread over nodes by default, so that replicas do not share a node when
others are available: {root, component, constraints}.
*/}}
{{- define "liaison.spread" -}}
topologySpreadConstraints:
{{- if .constraints }}
  {{- toYaml .constraints | nindent 2 }}
{{- else }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "liaison.componentSelector" . | nindent 8 }}
{{- end }}
{{- end -}}
