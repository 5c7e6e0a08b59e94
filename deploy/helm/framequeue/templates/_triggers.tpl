{{/* KEDA triggers counting waiting + in-flight jobs on the chosen broker (see ../shared/docs/SCALING.md) */}}
{{- define "framequeue.brokerTriggers" -}}
{{- $t := .Values.scaling.targetJobsPerWorker | toString -}}
{{- $a := .Values.scaling.activationJobs | toString -}}
{{- $auth := printf "%s-broker" (include "framequeue.fullname" .) -}}
{{- if eq .Values.broker "redis-streams" }}
# lagCount counts undelivered entries, pendingEntriesCount delivered-unacked ones: summed by the formula
- type: redis-streams
  name: lag
  metadata:
    address: {{ .Values.redis.address | quote }}
    stream: {{ printf "fq:%s:stream" .Values.queueName | quote }}
    consumerGroup: "fq"
    lagCount: {{ $t | quote }}
    activationLagCount: {{ $a | quote }}
  authenticationRef:
    name: {{ $auth }}
- type: redis-streams
  name: pending
  metadata:
    address: {{ .Values.redis.address | quote }}
    stream: {{ printf "fq:%s:stream" .Values.queueName | quote }}
    consumerGroup: "fq"
    pendingEntriesCount: {{ $t | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- else if eq .Values.broker "rabbitmq" }}
# over the management HTTP API, QueueLength counts ready + unacked (AMQP would count ready only)
- type: rabbitmq
  name: queue
  metadata:
    protocol: http
    mode: QueueLength
    value: {{ $t | quote }}
    activationValue: {{ $a | quote }}
    queueName: {{ .Values.queueName | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- else if eq .Values.broker "nats-jetstream" }}
# num_pending + num_ack_pending of the shared durable consumer
- type: nats-jetstream
  name: queue
  metadata:
    natsServerMonitoringEndpoint: {{ .Values.nats.natsServerMonitoringEndpoint | quote }}
    account: {{ .Values.nats.account | quote }}
    stream: {{ printf "FQ_%s" .Values.queueName | quote }}
    consumer: "workers"
    lagThreshold: {{ $t | quote }}
    activationLagThreshold: {{ $a | quote }}
{{- else if eq .Values.broker "postgresql" }}
# the job table is the truth: queued + running rows
- type: postgresql
  name: queue
  metadata:
    query: {{ printf "SELECT count(*) FROM %s.jobs WHERE status IN ('queued', 'running')" .Values.postgresql.schema | quote }}
    targetQueryValue: {{ $t | quote }}
    activationTargetQueryValue: {{ $a | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- else if eq .Values.broker "prometheus" }}
# framequeue's own gauge of waiting + in-flight jobs
- type: prometheus
  name: queue
  metadata:
    serverAddress: {{ .Values.prometheus.serverAddress | quote }}
    query: {{ .Values.prometheus.query | quote }}
    threshold: {{ $t | quote }}
    activationThreshold: {{ $a | quote }}
{{- else }}
{{- fail (printf "broker must be redis-streams, rabbitmq, nats-jetstream, postgresql or prometheus, not %q" .Values.broker) }}
{{- end }}
{{- range .Values.scaling.floors }}
# hour-of-day floor (PolicyConfig.floors)
- type: cron
  name: {{ .name | replace "-" "_" }}
  metadata:
    timezone: {{ $.Values.scaling.timezone | quote }}
    start: {{ .start | quote }}
    end: {{ .end | quote }}
    desiredReplicas: {{ .workers | quote }}
{{- end }}
{{- end -}}

{{/* redis: lag + pending, with each cron floor as floor replicas x target so that max() keeps it */}}
{{- define "framequeue.redisFormula" -}}
{{- $terms := list "lag + pending" -}}
{{- range .Values.scaling.floors -}}
{{- $terms = append $terms (printf "%s * %v" (.name | replace "-" "_") $.Values.scaling.targetJobsPerWorker) -}}
{{- end -}}
{{- if eq (len $terms) 1 -}}lag + pending{{- else -}}max({{ join ", " $terms }}){{- end -}}
{{- end -}}
