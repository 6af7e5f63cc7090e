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

{{- /* values.schema.json requires serviceAccount.name when serviceAccount.create is false. */}}
{{- define "modelplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The operator's settings.PEERING_NAME: the Deployment's --peering and the peering objects' name. */}}
{{- define "modelplane.peeringName" -}}
modelplane
{{- end -}}

{{- /* What values.schema.json cannot express: values checked against each other. */}}
{{- define "modelplane.validate" -}}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) -}}
{{- fail (printf "metrics.port and health.port are both %d: /metrics and /healthz need separate ports; change one (metrics.port=0 turns metrics off)" (int .Values.health.port)) -}}
{{- end -}}
{{- end -}}

{{- /*
RBAC, in four groups: kopf's ("framework") and modelplane's own ("application"), each split into what is
cluster-scoped (in the ClusterRole in either mode) and what lives in the watched namespaces (in the ClusterRole
when every namespace is watched, else in a Role in each of watchNamespaces).
*/}}
{{- define "modelplane.rules.framework.cluster" -}}
# Discover custom resources (and notice CRDs installed after start-up, e.g. LeaderWorkerSet's).
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
# Which namespaces exist: every one is watched with --all-namespaces; with watchNamespaces kopf still lists them
# to follow a watched namespace that is created or deleted later (without it: a warning at every start).
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}

{{- define "modelplane.rules.framework.watched" -}}
# Peering: with more than one replica only one acts (a ClusterKopfPeering, or a KopfPeering per namespace).
- apiGroups: [kopf.dev]
  resources: [{{ if .Values.watchNamespaces }}kopfpeerings{{ else }}clusterkopfpeerings{{ end }}]
  verbs: [get, list, watch, patch]
# Events for transitions people should see (plan failed, re-planned, invalid spec).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{- define "modelplane.rules.application.cluster" -}}
# GPUNodePools are cluster-scoped; the replica that acts writes their status (nodes and free GPUs).
- apiGroups: [modelplane.dev]
  resources: [gpunodepools]
  verbs: [get, list, watch]
- apiGroups: [modelplane.dev]
  resources: [gpunodepools/status]
  verbs: [get, patch]
# The GPU inventory the planner reads.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
{{- end -}}

{{- define "modelplane.rules.application.watched" -}}
# Our namespaced kind.
- apiGroups: [modelplane.dev]
  resources: [modeldeployments]
  verbs: [get, list, watch]
- apiGroups: [modelplane.dev]
  resources: [modeldeployments/status]
  verbs: [get, patch]
# GPUs in use by pods (only those of watched namespaces are visible to a namespace-scoped operator).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The serving objects modelplane creates (server-side apply: create + patch; a child whose spec others added
# fields to is replaced: update; delete only removes a kind the plan no longer needs).
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [leaderworkerset.x-k8s.io]
  resources: [leaderworkersets]
  verbs: [get, list, watch, create, patch, update, delete]
# KEDA's ScaledObject of a deployment with spec.autoscaling (none are created without KEDA installed).
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, update, delete]
# The NetworkPolicy that limits who reaches each deployment's serving port and its Ray ports.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, update, delete]
{{- end -}}
