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
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
{{- end -}}

{{- define "framequeue.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "framequeue.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* KEDA is optional: without it the Deployments carry their own replica counts */}}
{{- define "framequeue.kedaCheck" -}}
{{- if and .Values.scaledJob.enabled (not .Values.keda.enabled) -}}
{{- fail "scaledJob.enabled needs keda.enabled (a ScaledJob is a KEDA resource)" -}}
{{- end -}}
{{- end -}}

{{/* policy/v1 PodDisruptionBudget from Kubernetes 1.21; 1.20 and older have policy/v1beta1 only. A live
cluster lists its kinds (`helm install`); `helm template` knows only --kube-version and --api-versions */}}
{{- define "framequeue.pdbApiVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{/* preStop pause: the `sleep` action exists from Kubernetes 1.29 (needs no shell or sleep binary);
before that, exec `sleep N` from the image. Call with (dict "root" $ "seconds" N) */}}
{{- define "framequeue.preStop" -}}
{{- if semverCompare ">=1.29-0" .root.Capabilities.KubeVersion.Version -}}
preStop:
  sleep:
    seconds: {{ .seconds }}
{{- else -}}
preStop:
  exec:
    command: ["sleep", {{ .seconds | quote }}]
{{- end -}}
{{- end -}}

{{/* pod-level settings shared by every framequeue pod; call with (dict "root" $ "component" .Values.worker) */}}
{{- define "framequeue.podSpec" -}}
{{- $v := .root.Values -}}
serviceAccountName: {{ include "framequeue.serviceAccountName" .root }}
automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* a named worker group's pod label (framequeue.workerGroups); nothing for the one default group */}}
{{- define "framequeue.groupLabel" -}}
{{- if .name }}framequeue.dev/worker-group: {{ .name }}{{ end -}}
{{- end -}}

{{/* pod metadata: selector labels, component, a worker group's label (with "group"), annotations */}}
{{- define "framequeue.podMetadata" -}}
labels:
  {{- include "framequeue.selector" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .name }}
  {{- if and .group (.group | default dict).name }}{{ include "framequeue.groupLabel" .group | nindent 2 }}{{ end }}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* environment shared by every framequeue container */}}
{{- define "framequeue.env" -}}
{{- with .Values.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
env:
  {{- if not (hasKey .Values.env "FQ_HOME") }}
  - name: FQ_HOME
    value: {{ .Values.home | quote }}
  {{- end }}
  {{- if not (hasKey .Values.env "FQ_MODEL_REPO") }}
  - name: FQ_MODEL_REPO
    value: {{ .Values.models.path | quote }}
  {{- end }}
  {{- range $k, $v := .Values.env }}
  - name: {{ $k }}
    value: {{ $v | quote }}
  {{- end }}
  - name: FQ_WORKERS
    value: {{ .Values.worker.processesPerPod | quote }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* container-level settings: security context and mounts (home, /tmp, models, extras) */}}
{{- define "framequeue.containerCommon" -}}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: home
    mountPath: {{ .Values.home | quote }}
  - name: tmp
    mountPath: /tmp
  - name: models
    mountPath: {{ .Values.models.path | quote }}
    readOnly: {{ .Values.models.readOnly }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* pod volumes: home and /tmp (scratch, emptyDir), the model repository, extras */}}
{{- define "framequeue.volumes" -}}
{{- $m := .Values.models -}}
volumes:
  - name: home
    emptyDir: {}
  - name: tmp
    emptyDir: {}
  - name: models
    {{- if $m.persistentVolumeClaim.claimName }}
    persistentVolumeClaim:
      claimName: {{ $m.persistentVolumeClaim.claimName }}
      readOnly: {{ and $m.readOnly (not $m.s3.uri) }}
    {{- else if $m.persistentVolumeClaim.create }}
    persistentVolumeClaim:
      claimName: {{ include "framequeue.fullname" . }}-models
    {{- else if $m.hostPath.path }}
    hostPath:
      path: {{ $m.hostPath.path | quote }}
      type: {{ $m.hostPath.type }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* init container that copies the model repository from S3 (`aws s3 sync`, AWS CLI v2) before the pod
starts; credentials and AWS_* settings from models.s3.secretName (default: existingSecret) */}}
{{- define "framequeue.modelsInit" -}}
{{- $s3 := .Values.models.s3 -}}
{{- if $s3.uri }}
initContainers:
  - name: models-sync
    image: {{ $s3.image | quote }}
    imagePullPolicy: {{ $s3.pullPolicy }}
    command: ["aws", "s3", "sync", {{ $s3.uri | quote }}, {{ .Values.models.path | quote }}, "--no-progress"
      {{- with $s3.endpointUrl }}, "--endpoint-url", {{ . | quote }}{{ end }}
      {{- range $s3.extraArgs }}, {{ . | quote }}{{ end }}]
    {{- with ($s3.secretName | default .Values.existingSecret) }}
    envFrom:
      - secretRef:
          name: {{ . }}
    {{- end }}
    env:
      - name: HOME
        value: /tmp
      {{- with $s3.env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.securityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    resources:
      {{- toYaml $s3.resources | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: models
        mountPath: {{ .Values.models.path | quote }}
{{- end }}
{{- end -}}

{{/* the worker container: used by the Deployment and by the ScaledJob (with `--max-jobs 1`); splitWorkers:
the most worker processes the group can run at once */}}
{{- define "framequeue.workerContainer" -}}
{{- $w := .root.Values.worker -}}
name: worker
image: {{ include "framequeue.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
args: {{ .args | toJson }}
{{- include "framequeue.env" .root | trim | nindent 0 }}
{{- if not (hasKey .root.Values.env "FQ_SPLIT_WORKERS") }}
  # the most workers that could share one long video's segments (framequeue.worker.split): above 1, a job
  # longer than FQ_SPLIT_MIN_S is split
  - name: FQ_SPLIT_WORKERS
    value: {{ .splitWorkers | int | quote }}
{{- end }}
{{- if .root.Values.metrics.enabled }}
  - name: FQ_METRICS_PORT
    value: {{ .root.Values.metrics.workerPort | quote }}
  - name: FQ_METRICS_HOST
    value: "0.0.0.0"
ports:
  - name: metrics
    containerPort: {{ .root.Values.metrics.workerPort }}
{{- end }}
{{- include "framequeue.containerCommon" .root | trim | nindent 0 }}
resources:
  {{- toYaml $w.resources | nindent 2 }}
{{- end -}}
