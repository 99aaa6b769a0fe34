{{/* Names, labels, and the operator's RBAC rules (the one place that lists them). */}}

{{- define "llmop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmop.fullname" -}}
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

{{- define "llmop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "llmop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "llmop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: llmop
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "llmop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llmop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "llmop.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The namespace whose LLMDeployments the operator watches in "namespace" scope. */}}
{{- define "llmop.watchNamespace" -}}
{{- default .Release.Namespace .Values.rbac.watchNamespace -}}
{{- end -}}

{{- define "llmop.leaderName" -}}
{{- default (include "llmop.fullname" .) .Values.leaderElection.name -}}
{{- end -}}

{{- define "llmop.monitoringEnabled" -}}
{{- if or .Values.monitoring.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/*
RBAC: exactly what `llmop run` calls.
- llmop.rules.namespaced: resources in the watched namespaces (ClusterRole in cluster scope, Role otherwise).
- llmop.rules.clusterScoped: cluster-scoped reads kopf makes (CRD discovery, namespace observation), and the nodes
  that gpu.type auto reads (GPU labels, allocatable GPUs).
- llmop.rules.peering: kopf peering, by scope (leaderElection.mode "peering").
- llmop.rules.lease: the chart-created Lease only, in the release namespace (leaderElection.mode "lease").
*/}}
{{- define "llmop.rules.namespaced" -}}
- apiGroups: ["llmop.io"]
  resources: ["llmdeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["llmop.io"]
  resources: ["llmdeployments/status"]
  verbs: ["get", "patch", "update"]
# ownerReferences with blockOwnerDeletion on the children need it (OwnerReferencesPermissionEnforcement, on by
# default on OpenShift); llmop still puts no finalizer on an LLMDeployment.
- apiGroups: ["llmop.io"]
  resources: ["llmdeployments/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- if .Values.hub.readTokenSecrets }}
# spec.model.tokenSecretRef: the hub token for gated models' config.json (hub.readTokenSecrets)
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{- define "llmop.rules.clusterScoped" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list"]
{{- end -}}

{{- define "llmop.rules.peering" -}}
{{- if eq .Values.rbac.scope "cluster" -}}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- else -}}
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end -}}

{{- define "llmop.rules.lease" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "llmop.leaderName" . | quote }}]
  verbs: ["get", "update"]
{{- end -}}
