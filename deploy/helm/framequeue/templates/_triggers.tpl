{{/* KEDA triggers counting the waiting + in-flight jobs of one worker group's lanes on the chosen broker (see
../shared/docs/SCALING.md); call with (dict "root" $ "group" GROUP), GROUP from framequeue.workerGroups. Each
lane has its own stream / queue / consumer on Redis, RabbitMQ and NATS (framequeue.brokers): one trigger (two on
Redis) per lane, summed by the formula (framequeue.formula); the normal lane's keep the names they had before
lanes. PostgreSQL and Prometheus count the group's lanes in one query. */}}
{{- define "framequeue.brokerTriggers" -}}
{{- $root := .root -}}
{{- $g := .group -}}
{{- $v := $root.Values -}}
{{- $t := $g.targetJobsPerWorker | toString -}}
{{- $a := $g.activationJobs | toString -}}
{{- $auth := printf "%s-broker" (include "framequeue.fullname" $root) -}}
{{- $lanes := include "framequeue.triggerLanes" $g | fromYamlArray }}
{{- if eq $v.broker "redis-streams" }}
{{- range $lane := $lanes }}
{{- $key := ternary "" (printf ":%s" $lane) (eq $lane "normal") }}
{{- $name := ternary "" (printf "_%s" $lane) (eq $lane "normal") }}
# lagCount counts undelivered entries, pendingEntriesCount delivered-unacked ones: summed by the formula
- type: redis-streams
  name: {{ printf "lag%s" $name }}
  metadata:
    address: {{ $v.redis.address | quote }}
    stream: {{ printf "fq:{%s}%s:stream" $v.queueName $key | quote }}
    consumerGroup: "fq"
    lagCount: {{ $t | quote }}
    activationLagCount: {{ $a | quote }}
  authenticationRef:
    name: {{ $auth }}
- type: redis-streams
  name: {{ printf "pending%s" $name }}
  metadata:
    address: {{ $v.redis.address | quote }}
    stream: {{ printf "fq:{%s}%s:stream" $v.queueName $key | quote }}
    consumerGroup: "fq"
    pendingEntriesCount: {{ $t | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- end }}
{{- else if eq $v.broker "rabbitmq" }}
{{- range $lane := $lanes }}
# over the management HTTP API, QueueLength counts ready + unacked (AMQP would count ready only)
- type: rabbitmq
  name: {{ ternary "queue" (printf "queue_%s" $lane) (eq $lane "normal") }}
  metadata:
    protocol: http
    mode: QueueLength
    value: {{ $t | quote }}
    activationValue: {{ $a | quote }}
    queueName: {{ ternary $v.queueName (printf "%s.%s" $v.queueName $lane) (eq $lane "normal") | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- end }}
{{- else if eq $v.broker "nats-jetstream" }}
{{- range $lane := $lanes }}
# num_pending + num_ack_pending of the lane's shared durable consumer
- type: nats-jetstream
  name: {{ ternary "queue" (printf "queue_%s" $lane) (eq $lane "normal") }}
  metadata:
    natsServerMonitoringEndpoint: {{ $v.nats.natsServerMonitoringEndpoint | quote }}
    account: {{ $v.nats.account | quote }}
    stream: {{ printf "FQ_%s" $v.queueName | quote }}
    consumer: {{ ternary "workers" (printf "workers-%s" $lane) (eq $lane "normal") | quote }}
    lagThreshold: {{ $t | quote }}
    activationLagThreshold: {{ $a | quote }}
{{- end }}
{{- else if eq $v.broker "postgresql" }}
# the job table is the truth: queued + running rows{{ if not $g.all }} of the group's lanes{{ end }}
- type: postgresql
  name: queue
  metadata:
    {{- $where := "status IN ('queued', 'running')" }}
    {{- if not $g.all }}{{ $where = printf "%s AND priority IN ('%s')" $where (join "', '" $g.lanes) }}{{ end }}
    query: {{ printf "SELECT count(*) FROM %s.jobs WHERE %s" $v.postgresql.schema $where | quote }}
    targetQueryValue: {{ $t | quote }}
    activationTargetQueryValue: {{ $a | quote }}
  authenticationRef:
    name: {{ $auth }}
{{- else if eq $v.broker "prometheus" }}
# framequeue's own gauge of waiting + in-flight jobs{{ if not $g.all }} of the group's lanes (the API's /metrics){{ end }}
- type: prometheus
  name: queue
  metadata:
    serverAddress: {{ $v.prometheus.serverAddress | quote }}
    {{- if $g.all }}
    query: {{ $v.prometheus.query | quote }}
    {{- else }}
    {{- /* every API replica exports the same job store's numbers: one per lane (max), then the lanes summed */}}
    query: {{ printf "sum(max by (priority) (framequeue_outstanding_by_priority_jobs{priority=~\"%s\"}))" (join "|" $g.lanes) | quote }}
    {{- end }}
    threshold: {{ $t | quote }}
    activationThreshold: {{ $a | quote }}
{{- else }}
{{- fail (printf "broker must be redis-streams, rabbitmq, nats-jetstream, postgresql or prometheus, not %q" $v.broker) }}
{{- end }}
{{- range $g.floors }}
# hour-of-day floor (PolicyConfig.floors)
- type: cron
  name: {{ .name | replace "-" "_" }}
  metadata:
    timezone: {{ $v.scaling.timezone | quote }}
    start: {{ .start | quote }}
    end: {{ .end | quote }}
    desiredReplicas: {{ .workers | quote }}
{{- end }}
{{- end -}}

{{/* The broker triggers' names that sum to the group's outstanding jobs (lag + pending per lane on Redis, one
queue per lane on RabbitMQ and NATS, one query elsewhere), as a YAML list; same arguments as brokerTriggers */}}
{{- define "framequeue.sumTerms" -}}
{{- $terms := list -}}
{{- $broker := .root.Values.broker -}}
{{- range $lane := include "framequeue.triggerLanes" .group | fromYamlArray -}}
{{- $name := ternary "" (printf "_%s" $lane) (eq $lane "normal") -}}
{{- if eq $broker "redis-streams" -}}
{{- $terms = append $terms (printf "lag%s" $name) -}}
{{- $terms = append $terms (printf "pending%s" $name) -}}
{{- else if or (eq $broker "rabbitmq") (eq $broker "nats-jetstream") -}}
{{- $terms = append $terms (printf "queue%s" $name) -}}
{{- end -}}
{{- end -}}
{{- toYaml $terms -}}
{{- end -}}

{{/* the sum of the terms, with each cron floor as floor replicas x target so that max() keeps it */}}
{{- define "framequeue.formula" -}}
{{- $sum := include "framequeue.sumTerms" . | fromYamlArray | join " + " -}}
{{- $terms := list $sum -}}
{{- range .group.floors -}}
{{- $terms = append $terms (printf "%s * %v" (.name | replace "-" "_") $.group.targetJobsPerWorker) -}}
{{- end -}}
{{- if eq (len $terms) 1 -}}{{ $sum }}{{- else -}}max({{ join ", " $terms }}){{- end -}}
{{- end -}}

{{/* a group's lanes in the order of its triggers: normal first (the triggers a chart from before lanes had) */}}
{{- define "framequeue.triggerLanes" -}}
{{- $lanes := list -}}
{{- range $lane := list "normal" "high" "low" -}}
{{- if has $lane $.lanes -}}{{- $lanes = append $lanes $lane -}}{{- end -}}
{{- end -}}
{{- toYaml $lanes -}}
{{- end -}}
