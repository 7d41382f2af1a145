{{/* Names and labels shared by every template. */}}

{{- define "failover-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "failover-operator.fullname" -}}
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

{{- define "failover-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "failover-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: failover-operator
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "failover-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "failover-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "failover-operator.operatorServiceAccountName" -}}
{{- default (printf "%s-operator" (include "failover-operator.fullname" .)) .Values.serviceAccount.operator.name }}
{{- end }}

{{- define "failover-operator.observerServiceAccountName" -}}
{{- default (printf "%s-observer" (include "failover-operator.fullname" .)) .Values.serviceAccount.observer.name }}
{{- end }}

{{- define "failover-operator.agentServiceAccountName" -}}
{{- default (printf "%s-agent" (include "failover-operator.fullname" .)) .Values.serviceAccount.agent.name }}
{{- end }}

{{- define "failover-operator.leaseName" -}}
{{- default (printf "%s-leader" (include "failover-operator.fullname" .)) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* Role when one namespace is watched, ClusterRole when all are. */}}
{{- define "failover-operator.roleKind" -}}
{{- if .Values.watchNamespace }}Role{{ else }}ClusterRole{{ end }}
{{- end }}

{{- define "failover-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Refuses values that would run an unsafe operator. The schema checks each value; these are the
rules between values.
*/}}
{{- define "failover-operator.validate" -}}
{{- if and .Values.operator.enabled (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection.enabled) }}
{{- fail "operator.replicas > 1 needs operator.leaderElection.enabled=true: two active replicas would both act on the same policies" }}
{{- end }}
{{- if and .Values.operator.enabled (gt (int .Values.operator.shards) 1) (not .Values.operator.leaderElection.enabled) }}
{{- fail "operator.shards > 1 needs operator.leaderElection.enabled=true: each shard is a Lease" }}
{{- end }}
{{- with .Values.operator.leaderElection }}
{{- if not (gt (int .leaseDurationSeconds) (int .renewDeadlineSeconds)) }}
{{- fail "operator.leaderElection.leaseDurationSeconds must be greater than renewDeadlineSeconds" }}
{{- end }}
{{- if not (gt (int .renewDeadlineSeconds) (int .retryPeriodSeconds)) }}
{{- fail "operator.leaderElection.renewDeadlineSeconds must be greater than retryPeriodSeconds" }}
{{- end }}
{{- end }}
{{- if and .Values.observer.enabled (or (not .Values.observer.name) (not .Values.observer.region)) }}
{{- fail "observer.enabled=true needs observer.name and observer.region, e.g. --set observer.name=us-east-1,observer.region=us-east-1" }}
{{- end }}
{{- if and .Values.watchNamespace .Values.rbac.secretNamespaces }}
{{- fail (printf "rbac.secretNamespaces is for an operator that watches every namespace; with watchNamespace=%s it reads Secrets in %s only: unset one of them" .Values.watchNamespace .Values.watchNamespace) }}
{{- end }}
{{- if and .Values.operator.enabled .Values.operator.podDisruptionBudget.enabled (ge (int .Values.operator.podDisruptionBudget.maxUnavailable) (int .Values.operator.replicas)) (gt (int .Values.operator.replicas) 1) }}
{{- fail "operator.podDisruptionBudget.maxUnavailable must be less than operator.replicas, or a node drain may stop every replica" }}
{{- end }}
{{- end }}
