{{- define "framequeue.fullname" -}}
{{- printf "%s-framequeue" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "framequeue.labels" -}}
app.kubernetes.io/name: framequeue
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "framequeue.selector" -}}
app.kubernetes.io/name: framequeue
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "framequeue.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{/* environment shared by every framequeue container */}}
{{- define "framequeue.env" -}}
envFrom:
  - secretRef:
      name: {{ .Values.existingSecret }}
env:
  {{- range $k, $v := .Values.env }}
  - name: {{ $k }}
    value: {{ $v | quote }}
  {{- end }}
  - name: FQ_WORKERS
    value: {{ .Values.worker.processesPerPod | quote }}
{{- end -}}

{{/* the worker container: used by the Deployment and by the ScaledJob */}}
{{- define "framequeue.workerContainer" -}}
name: worker
image: {{ include "framequeue.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["worker"]
{{- include "framequeue.env" . | nindent 0 }}
resources:
  {{- toYaml .Values.worker.resources | nindent 2 }}
{{- end -}}
