{{/* The worker groups, as a YAML list: each {name, suffix, lanes (in serving order), all, minReplicas,
maxReplicas, replicas, targetJobsPerWorker, activationJobs, floors}. No `workerGroups`: one group for every
lane, named "" (its resources keep their names, <release>-framequeue-worker) with `scaling`'s numbers and
floors. A named group takes what it does not set from `scaling` (floors: none) and `worker.replicas`. Read it
with `include "framequeue.workerGroups" . | fromYamlArray`. */}}
{{- define "framequeue.workerGroups" -}}
{{- $s := .Values.scaling -}}
{{- $all := list "high" "normal" "low" -}}
{{- $groups := list -}}
{{- if not .Values.workerGroups -}}
{{- $groups = append $groups (dict "name" "" "suffix" "" "lanes" $all "all" true
    "minReplicas" $s.minReplicas "maxReplicas" $s.maxReplicas "replicas" .Values.worker.replicas
    "targetJobsPerWorker" $s.targetJobsPerWorker "activationJobs" $s.activationJobs "floors" $s.floors) -}}
{{- else -}}
{{- if .Values.scaledJob.enabled -}}
{{- fail "workerGroups needs the worker Deployments: set scaledJob.enabled=false (a ScaledJob serves every lane)" -}}
{{- end -}}
{{- $served := dict -}}
{{- range $g := .Values.workerGroups -}}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$" (toString $g.name)) -}}
{{- fail (printf "workerGroups: name %q must be 1-20 lowercase letters, digits or '-'" (toString $g.name)) -}}
{{- end -}}
{{- if not $g.lanes -}}
{{- fail (printf "workerGroups %s: name its lanes (high, normal, low)" $g.name) -}}
{{- end -}}
{{- range $g.lanes -}}
{{- if not (has . $all) -}}
{{- fail (printf "workerGroups %s: unknown lane %q (high, normal, low)" $g.name (toString .)) -}}
{{- end -}}
{{- $_ := set $served . true -}}
{{- end -}}
{{- $lanes := list -}}
{{- range $lane := $all -}}
{{- if has $lane $g.lanes -}}{{- $lanes = append $lanes $lane -}}{{- end -}}
{{- end -}}
{{- $groups = append $groups (dict "name" $g.name "suffix" (printf "-%s" $g.name) "lanes" $lanes
    "all" (eq (len $lanes) 3)
    "minReplicas" (ternary $g.minReplicas $s.minReplicas (hasKey $g "minReplicas"))
    "maxReplicas" (ternary $g.maxReplicas $s.maxReplicas (hasKey $g "maxReplicas"))
    "replicas" (ternary $g.replicas $.Values.worker.replicas (hasKey $g "replicas"))
    "targetJobsPerWorker" (ternary $g.targetJobsPerWorker $s.targetJobsPerWorker (hasKey $g "targetJobsPerWorker"))
    "activationJobs" (ternary $g.activationJobs $s.activationJobs (hasKey $g "activationJobs"))
    "floors" (ternary $g.floors list (hasKey $g "floors"))) -}}
{{- end -}}
{{- range $lane := $all -}}
{{- if not (hasKey $served $lane) -}}
{{- fail (printf "workerGroups: no group serves the %s lane (its jobs would never run)" $lane) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $groups -}}
{{- end -}}
