{{- define "devtunnels-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "devtunnels-controller.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ktube
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "devtunnels-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "devtunnels-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "devtunnels-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The value of app.kubernetes.io/managed-by on every object the controller creates (MANAGED_BY in its code). */ -}}
{{- define "devtunnels-controller.managedBy" -}}
ktube-devtunnels-controller
{{- end -}}

{{- /* The user name the API server gives the controller's ServiceAccount. */ -}}
{{- define "devtunnels-controller.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "devtunnels-controller.serviceAccountName" .) -}}
{{- end -}}

{{- /* The controller's image; also the hosts' unless hostImage is set (it runs the host as `connector`). */ -}}
{{- define "devtunnels-controller.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- /* The hosts' image: hostImage, else the controller's own. */ -}}
{{- define "devtunnels-controller.hostImage" -}}
{{- .Values.hostImage | default (include "devtunnels-controller.image" .) -}}
{{- end -}}
