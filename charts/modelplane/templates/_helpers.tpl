{{- define "modelplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelplane.labels" -}}
app.kubernetes.io/name: modelplane
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "modelplane.selectorLabels" -}}
app.kubernetes.io/name: modelplane
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "modelplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
