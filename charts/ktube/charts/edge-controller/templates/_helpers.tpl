{{- define "edge-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "edge-controller.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ktube
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "edge-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "edge-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "edge-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The value of app.kubernetes.io/managed-by on every object the controller creates (MANAGED_BY in its code). */ -}}
{{- define "edge-controller.managedBy" -}}
ktube-edge-controller
{{- end -}}

{{- /* The user name the API server gives the controller's ServiceAccount. */ -}}
{{- define "edge-controller.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "edge-controller.serviceAccountName" .) -}}
{{- end -}}

{{- /* The uplinks' image: uplinkImage, else the controller's own (it runs the uplink as `connector`). */ -}}
{{- define "edge-controller.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
