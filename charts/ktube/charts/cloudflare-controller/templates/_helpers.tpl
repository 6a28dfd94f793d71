{{- define "cloudflare-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cloudflare-controller.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ktube
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cloudflare-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cloudflare-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cloudflare-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The value of app.kubernetes.io/managed-by on every object the controller creates (fixed in its code). */ -}}
{{- define "cloudflare-controller.managedBy" -}}
ktube-cloudflare-controller
{{- end -}}

{{- /* The user name the API server gives the controller's ServiceAccount. */ -}}
{{- define "cloudflare-controller.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "cloudflare-controller.serviceAccountName" .) -}}
{{- end -}}
