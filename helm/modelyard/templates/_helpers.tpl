{{/* Chart name, truncated to the 63 characters Kubernetes allows in names. */}}
{{- define "modelyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; a release already named after the chart is not repeated. */}}
{{- define "modelyard.fullname" -}}
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

{{/* Name of one service's objects: <fullname>-<service>. Call with (dict "root" $ "service" "tracking"). */}}
{{- define "modelyard.serviceName" -}}
{{- printf "%s-%s" (include "modelyard.fullname" .root) .service | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "modelyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one service. Call with (dict "root" $ "service" "tracking"). */}}
{{- define "modelyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end }}

{{- define "modelyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The ASGI application each service runs under gunicorn. */}}
{{- define "modelyard.asgiApp" -}}
{{- $apps := dict "tracking" "modelyard.tracking.asgi:app" "artifacts" "modelyard.artifact_proxy.asgi:app" "serving" "modelyard.serving.asgi:app" }}
{{- get $apps . }}
{{- end }}

{{/* gunicorn configuration of each service (serving downloads its model once, in the master). */}}
{{- define "modelyard.gunicornConf" -}}
{{- if eq . "serving" }}python:modelyard.serving.gunicorn_conf{{ else }}python:modelyard.runtime.gunicorn_conf{{ end }}
{{- end }}

{{/* Health path each service answers (serving follows the SageMaker contract: /ping). */}}
{{- define "modelyard.healthPath" -}}
{{- if eq . "serving" }}/ping{{ else }}/health{{ end }}
{{- end }}

{{/* The database URI, always from an existing Secret. */}}
{{- define "modelyard.databaseEnv" -}}
- name: MODELYARD_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.uriKey }}
{{- end }}

{{/* S3 settings; static keys only by Secret reference, otherwise the pod's IAM role (IRSA). */}}
{{- define "modelyard.s3Env" -}}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.artifacts.s3.region | quote }}
{{- with .Values.artifacts.s3.endpointUrl }}
- name: MODELYARD_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.artifacts.s3.addressingStyle }}
- name: MODELYARD_S3_ADDRESSING_STYLE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.artifacts.s3.credentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.artifacts.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.artifacts.s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{/* Presigned downloads, on the artifacts service (it hands out the URLs) and tracking (its /server-info
tells the mlflow client to ask for them). */}}
{{- define "modelyard.presignedEnv" -}}
{{- with .Values.artifacts.presignedDownloads }}
{{- if .enabled }}
- name: MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS
  value: "true"
- name: MODELYARD_ARTIFACTS_PRESIGNED_TTL
  value: {{ .ttlSeconds | quote }}
{{- with .publicEndpointUrl }}
- name: MODELYARD_S3_PUBLIC_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Writable scratch space: the root filesystem is read-only. */}}
{{- define "modelyard.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* MODELYARD_ALLOWED_HOSTS: the ingress host, every service's in-cluster names, localhost, the pod's IP
(`$(POD_IP)`, expanded by Kubernetes: probes and metrics scrapes use it as Host), plus the values' extras. */}}
{{- define "modelyard.allowedHosts" -}}
{{- $extra := .Values.browserProtection.allowedHosts }}
{{- if has "*" $extra }}*{{ else }}
{{- $hosts := list "localhost" "127.0.0.1" "::1" "$(POD_IP)" }}
{{- if .Values.ingress.enabled }}{{ $hosts = append $hosts .Values.ingress.host }}{{ end }}
{{- range $service, $cfg := .Values.services }}
{{- $name := include "modelyard.serviceName" (dict "root" $ "service" $service) }}
{{- $ns := $.Release.Namespace }}
{{- $hosts = concat $hosts (list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns)) }}
{{- end }}
{{- join "," (concat $hosts $extra | uniq) }}
{{- end }}
{{- end }}

{{/* Browser-origin protection of every service (`modelyard.runtime.browser_guard`). */}}
{{- define "modelyard.browserProtectionEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: MODELYARD_ALLOWED_HOSTS
  value: {{ include "modelyard.allowedHosts" . | quote }}
{{- with .Values.browserProtection.allowedOrigins }}
- name: MODELYARD_ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{/* Auth settings every service reads (MODELYARD_AUTH and friends); nothing when auth is off. */}}
{{- define "modelyard.authEnv" -}}
{{- if .Values.auth.enabled }}
- name: MODELYARD_AUTH
  value: "true"
- name: MODELYARD_AUTH_DEFAULT_PERMISSION
  value: {{ .Values.auth.defaultPermission | quote }}
- name: MODELYARD_AUTH_CACHE_SECONDS
  value: {{ .Values.auth.cacheSeconds | quote }}
{{- with .Values.auth.trustedProxies }}
- name: MODELYARD_AUTH_TRUSTED_PROXIES
  value: {{ join "," . | quote }}
- name: MODELYARD_AUTH_USER_HEADER
  value: {{ $.Values.auth.userHeader | quote }}
- name: MODELYARD_AUTH_GROUPS_HEADER
  value: {{ $.Values.auth.groupsHeader | quote }}
{{- end }}
{{- end }}
{{- with .Values.auth.corsAllowedOrigins }}
- name: MODELYARD_CORS_ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{/* The first admin: name from the Secret, password as a file from the same Secret (never a value). */}}
{{- define "modelyard.adminEnv" -}}
{{- if .Values.auth.enabled }}
- name: MODELYARD_ADMIN_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "auth.admin.existingSecret is required when auth.enabled" .Values.auth.admin.existingSecret }}
      key: {{ .Values.auth.admin.usernameKey }}
- name: MODELYARD_ADMIN_PASSWORD_FILE
  value: /etc/modelyard/admin/password
{{- end }}
{{- end }}

{{/* The serving service's credentials for tracking (the mlflow client's variables), by Secret reference. */}}
{{- define "modelyard.serviceAccountEnv" -}}
{{- with .Values.auth.serviceAccount.existingSecret }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.auth.serviceAccount.usernameKey }}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.auth.serviceAccount.passwordKey }}
{{- end }}
{{- end }}
