{{- define "ngrok-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ngrok-controller.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ktube
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ngrok-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ngrok-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ngrok-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The value of app.kubernetes.io/managed-by on every object the controller creates (fixed in its code). */ -}}
{{- define "ngrok-controller.managedBy" -}}
ktube-ngrok-controller
{{- end -}}

{{- /* The user name the API server gives the controller's ServiceAccount. */ -}}
{{- define "ngrok-controller.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "ngrok-controller.serviceAccountName" .) -}}
{{- end -}}

{{- /* The agents' image: connectorImage, else the controller's own (it runs the agent as `connector`). */ -}}
{{- define "ngrok-controller.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
