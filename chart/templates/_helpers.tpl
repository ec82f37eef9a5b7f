{{/*
Names, labels, images, security contexts, generated secrets and the check of the values that
values.schema.json cannot express. The environment of each component is in _env.tpl.
*/}}

{{- define "airflow-teams.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name. */}}
{{- define "airflow-teams.fullname" -}}
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

{{/*
An object name: <fullname>-<parts...>, at most 63 characters (Service names are DNS labels). A longer
name is cut and ends with 8 characters of its sha256, so two long names stay distinct.
Call: include "airflow-teams.objectName" (list $root "team-a" "internal-api")
*/}}
{{- define "airflow-teams.objectName" -}}
{{- $root := first . }}
{{- $name := join "-" (prepend (rest .) (include "airflow-teams.fullname" $root)) }}
{{- if le (len $name) 63 }}
{{- $name }}
{{- else }}
{{- printf "%s-%s" (trunc 54 $name | trimSuffix "-") (sha256sum $name | trunc 8) }}
{{- end }}
{{- end }}

{{- define "airflow-teams.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of a component. Call with dict "root" $ "component" "scheduler" and, for a team's
components, "team" $t (a normalised team, see airflow-teams.team).
*/}}
{{- define "airflow-teams.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airflow-teams.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .team }}
airflow-teams/team: {{ .name }}
{{- end }}
{{- with .dagsFolderIndex }}
airflow-teams/dags-folder: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Labels of every object (same arguments as selectorLabels). */}}
{{- define "airflow-teams.labels" -}}
{{ include "airflow-teams.selectorLabels" . }}
app.kubernetes.io/part-of: airflow-teams
app.kubernetes.io/version: {{ .root.Chart.AppVersion | replace "+" "_" | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "airflow-teams.chartLabel" .root }}
{{- end }}

{{/*
Labels of a pod: its selector labels plus what the NetworkPolicies select on:
airflow-teams/database: "true" for the pods that may reach the metadata database, and
airflow-teams/perimeter: team for the pods that run a team's code (never the database).
Same arguments as selectorLabels, plus "database" true or "perimeter" true.
*/}}
{{- define "airflow-teams.podLabels" -}}
{{ include "airflow-teams.labels" . }}
{{- if .database }}
airflow-teams/database: "true"
{{- end }}
{{- if .perimeter }}
airflow-teams/perimeter: team
{{- end }}
{{- end }}

{{/* The Airflow image, or a team's own over it: include "airflow-teams.airflowImage" (list $root $t.image) */}}
{{- define "airflow-teams.airflowImage" -}}
{{- $root := index . 0 }}
{{- $image := merge (deepCopy (index . 1 | default dict)) $root.Values.images.airflow }}
{{- $tag := $image.tag | default ($root.Chart.AppVersion | replace "+" "-") }}
image: {{ printf "%s:%s" $image.repository $tag | quote }}
imagePullPolicy: {{ $image.pullPolicy }}
{{- end }}

{{/* Another image (PostgreSQL, Redis): include "airflow-teams.image" (list $root .Values.images.redis) */}}
{{- define "airflow-teams.image" -}}
{{- $image := index . 1 }}
image: {{ printf "%s:%s" $image.repository $image.tag | quote }}
imagePullPolicy: {{ $image.pullPolicy }}
{{- end }}

{{- define "airflow-teams.podSecurityContext" -}}
securityContext:
  {{- toYaml .Values.securityContext.pod | nindent 2 }}
{{- end }}

{{- define "airflow-teams.containerSecurityContext" -}}
securityContext:
  {{- toYaml .Values.securityContext.container | nindent 2 }}
{{- end }}

{{/* Security context of the PostgreSQL and Redis pods: their images' own uid 999. */}}
{{- define "airflow-teams.serviceSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 999
  runAsGroup: 999
  fsGroup: 999
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "airflow-teams.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "airflow-teams.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Where the configuration files are mounted (read-only) in every Airflow container. */}}
{{- define "airflow-teams.configDir" -}}/opt/airflow/config{{- end }}

{{/* The internal API's URL of a team (normalised team as argument, with $t.root). */}}
{{- define "airflow-teams.internalApiUrl" -}}
{{- printf "http://%s.%s.svc:%d" .internalApiName .releaseNamespace (int .internalApiPort) }}
{{- end }}

{{/*
A normalised team: the entry of teams[] with every default applied, and the names the templates use.
Call: $t := include "airflow-teams.team" (dict "root" $ "team" $entry) | fromYaml
*/}}
{{- define "airflow-teams.team" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $e := .team }}
{{- $slug := $e.name | lower | replace "_" "-" }}
{{- $dags := $e.dags | default dict }}
{{- $folders := $dags.folders | default (list (printf "%s/%s" (trimSuffix "/" $v.dags.folder) $e.name)) }}
{{- $celery := $e.celery | default dict }}
{{- $redis := $celery.redis | default dict }}
{{- $kubernetes := $e.kubernetes | default dict }}
{{- $api := $e.internalApi | default dict }}
{{- $resources := $e.resources | default dict }}
{{- $workers := $e.workers | default dict }}
{{- $triggerer := $e.triggerer | default dict }}
{{- $np := $e.networkPolicy | default dict }}
{{- $celeryTeam := eq $e.executor "celery" }}
{{- $chartRedis := and $celeryTeam (not $celery.brokerUrl) (not $celery.existingSecret) (ne (toString $redis.enabled) "false") }}
{{- $out := dict
  "name" $e.name
  "slug" $slug
  "envPrefix" (printf "AIRFLOW__%s___" (upper $e.name))
  "executor" $e.executor
  "executorName" (printf "%s_%s" $e.name $e.executor)
  "executorClass" (ternary "CeleryExecutor" "KubernetesExecutor" $celeryTeam)
  "celery" $celeryTeam
  "kubernetes" (not $celeryTeam)
  "chartRedis" $chartRedis
  "brokerPeers" ($celery.brokerPeers | default list)
  "brokerPort" ($celery.brokerPort | default 6379)
  "dagsFolders" $folders
  "dagsMountPath" ($dags.mountPath | default (first $folders))
  "dagsVolume" ($dags.volume | default dict)
  "namespace" ($kubernetes.namespace | default $root.Release.Namespace)
  "releaseNamespace" $root.Release.Namespace
  "image" $e.image
  "internalApiName" (include "airflow-teams.objectName" (list $root $slug "internal-api"))
  "internalApiPort" $v.internalApi.port
  "internalApiReplicas" ($api.replicas | default $v.internalApi.replicas)
  "internalApiWorkers" ($api.workers | default $v.internalApi.workers)
  "keysSecret" ($api.existingSecret | default (include "airflow-teams.objectName" (list $root $slug "keys")))
  "keysGenerated" (not $api.existingSecret)
  "brokerSecret" ($celery.existingSecret | default (include "airflow-teams.objectName" (list $root $slug "broker")))
  "brokerGenerated" (not $celery.existingSecret)
  "redisName" (include "airflow-teams.objectName" (list $root $slug "redis"))
  "serviceAccount" (include "airflow-teams.objectName" (list $root $slug "team"))
  "podTemplateConfigMap" (include "airflow-teams.objectName" (list $root $slug "pod-template"))
  "secretsBackend" ($e.secretsBackend | default dict)
  "config" ($e.config | default dict)
  "env" ($e.env | default list)
  "extraVolumes" ($e.extraVolumes | default list)
  "extraVolumeMounts" ($e.extraVolumeMounts | default list)
  "resources" (dict
      "dagProcessor" ($resources.dagProcessor | default $v.dagProcessor.resources)
      "triggerer" ($resources.triggerer | default $v.triggerer.resources)
      "worker" ($resources.worker | default $v.workers.resources)
      "internalApi" ($resources.internalApi | default ($api.resources | default $v.internalApi.resources))
      "redis" ($resources.redis | default $v.redis.resources))
  "workerReplicas" (ternary $workers.replicas $v.workers.replicas (hasKey $workers "replicas"))
  "workerConcurrency" ($workers.concurrency | default $v.workers.concurrency)
  "triggererReplicas" ($triggerer.replicas | default $v.triggerer.replicas)
  "scheduling" (dict "nodeSelector" ($e.nodeSelector | default dict) "tolerations" ($e.tolerations | default list) "affinity" ($e.affinity | default dict))
  "extraEgress" ($np.extraEgress | default list)
  "keyChecksum" (sha256sum (toString $api.secretKey))
  "keysChecksum" (sha256sum (printf "%s/%s" (toString $api.secretKey) (toString $api.previousSecretKey)))
}}
{{- toYaml $out }}
{{- end }}

{{/* Every normalised team, as a list under the key "teams": (include "airflow-teams.teams" $ | fromYaml).teams */}}
{{- define "airflow-teams.teams" -}}
{{- $teams := list }}
{{- range .Values.teams }}
{{- $teams = append $teams (include "airflow-teams.team" (dict "root" $ "team" .) | fromYaml) }}
{{- end }}
{{- toYaml (dict "teams" $teams) }}
{{- end }}

{{/*
The [core] executor JSON object: each team's one executor, named <team>_<celery|kubernetes>. It holds
no secret: brokers, namespaces and templates are in each team's AIRFLOW__<TEAM>___ variables.
*/}}
{{- define "airflow-teams.executorJson" -}}
{{- $executors := dict }}
{{- range (include "airflow-teams.teams" . | fromYaml).teams }}
{{- $_ := set $executors .name (list (dict "name" .executorName "class" .executorClass)) }}
{{- end }}
{{- toJson $executors }}
{{- end }}

{{/*
A value of a Secret the chart generates: the given value, else the one already in the cluster (so an
upgrade keeps it; `lookup` finds nothing in `helm template` or a dry run), else a new random one.
Call: include "airflow-teams.secretValue" (dict "root" $ "namespace" ns "secret" name "key" k "value" given "kind" "password|fernet")
*/}}
{{- define "airflow-teams.secretValue" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .namespace .secret }}
{{- $data := ($existing.data | default dict) }}
{{- if hasKey $data .key }}
{{- index $data .key | b64dec }}
{{- else if eq .kind "fernet" }}
{{- randBytes 32 | replace "+" "-" | replace "/" "_" }}
{{- else }}
{{- randAlphaNum 48 }}
{{- end }}
{{- end }}
{{- end }}

{{- define "airflow-teams.databaseSecret" -}}
{{- .Values.database.existingSecret | default (include "airflow-teams.objectName" (list . "database")) }}
{{- end }}
{{- define "airflow-teams.fernetSecret" -}}
{{- .Values.fernetKeySecret | default (include "airflow-teams.objectName" (list . "fernet")) }}
{{- end }}
{{- define "airflow-teams.webserverSecret" -}}
{{- .Values.webserver.secretKeySecret | default (include "airflow-teams.objectName" (list . "webserver")) }}
{{- end }}

{{/*
What values.schema.json cannot check, with one clear message each: team names unique (also when they
differ only in case, which the fork refuses, or in '_' versus '-', which would share Kubernetes
names), options the chart sets itself, a database, and settings of the other executor.
*/}}
{{- define "airflow-teams.validate" -}}
{{- $seen := dict }}
{{- range .Values.teams }}
{{- $key := .name | lower | replace "_" "-" }}
{{- if hasKey $seen $key }}
{{- if eq (get $seen $key) .name }}
{{- fail (printf "teams: team %q is listed twice; each team appears once in teams." .name) }}
{{- else }}
{{- fail (printf "teams: teams %q and %q differ only in case or in '_' versus '-'; the fork refuses team names that differ only in case, and the chart derives Kubernetes names from the lower-cased name with '-' for '_' (%q). Rename one of them." (get $seen $key) .name $key) }}
{{- end }}
{{- end }}
{{- $_ := set $seen $key .name }}
{{- if and (eq .executor "kubernetes") (hasKey . "celery") }}
{{- fail (printf "teams: team %q has executor kubernetes but celery settings; remove its celery key (or use executor celery)." .name) }}
{{- end }}
{{- if and (eq .executor "celery") (hasKey . "kubernetes") }}
{{- fail (printf "teams: team %q has executor celery but kubernetes settings; remove its kubernetes key (or use executor kubernetes)." .name) }}
{{- end }}
{{- end }}
{{- $keys := dict }}
{{- range $entry := .Values.teams }}
{{- $api := $entry.internalApi | default dict }}
{{- range $key := (list $api.secretKey $api.previousSecretKey) }}
{{- if $key }}
{{- $digest := sha256sum $key }}
{{- $owner := get $keys $digest }}
{{- if and $owner (ne $owner $entry.name) }}
{{- fail (printf "teams: teams %q and %q share an internal API key (internalApi.secretKey or previousSecretKey); each team needs a key of its own, or one team's components could sign the other's calls." $owner $entry.name) }}
{{- end }}
{{- $_ := set $keys $digest $entry.name }}
{{- end }}
{{- end }}
{{- end }}
{{- $owned := dict "core" (list "multi_team" "executor" "database_access_isolation" "dags_folder" "fernet_key" "internal_api_url" "internal_api_secret_key" "auth_manager") "database" (list "sql_alchemy_conn") "scheduler" (list "standalone_dag_processor") "webserver" (list "secret_key" "config_file") "logging" (list "log_server_secret_key") }}
{{- range $section, $options := $owned }}
{{- range $options }}
{{- if hasKey (get $.Values.config $section | default dict) . }}
{{- fail (printf "config.%s.%s is set by the chart (see values.yaml); remove it from config." $section .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (not .Values.database.url) (not .Values.database.existingSecret) }}
{{- fail "database: with postgresql.enabled false, set database.url or database.existingSecret (a Secret with the key `connection`)." }}
{{- end }}
{{- if and .Values.postgresql.enabled (or .Values.database.url .Values.database.existingSecret) }}
{{- fail "database: database.url/existingSecret are used only with postgresql.enabled false; set one or the other." }}
{{- end }}
{{- end }}
