{{/*
The environment of every Airflow container, by kind of component. Airflow is configured only through
these variables and the read-only airflow.cfg of the config ConfigMap (which sets nothing).

Who gets what:
  every component     multi_team, the [core] executor JSON, database_access_isolation, the DAG
                      folders of every team (paths only: each process checks that no two overlap)
  scheduler, webserver, jobs   the database URL, the Fernet key, every team's config options and
                      KubernetesExecutor settings; the scheduler also every Celery team's broker
  internal API of T   the database URL, the Fernet key, T's options, URL, key and previous key, T's
                      secrets backend
  T's components      sql_alchemy_conn = none://, T's options, T's internal API URL and key, T's
                      secrets backend; workers T's broker; the triggerer the Fernet key; with
                      webserver.fetchLogsFromTeamPods, workers and triggerer T's log-server key (the
                      webserver gets every team's), never [webserver] secret_key
Nothing of another team's keys, brokers or backends, and never the database URL, reaches a team pod.
*/}}

{{- define "airflow-teams.envVar" -}}
- name: {{ index . 0 }}
  value: {{ index . 1 | toString | quote }}
{{- end }}

{{- define "airflow-teams.secretEnvVar" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 }}
      key: {{ index . 2 }}
{{- end }}

{{/* Options of a {section: {option: value}} map, as variables with the given prefix. */}}
{{- define "airflow-teams.configEnv" -}}
{{- $prefix := index . 0 }}
{{- range $section, $options := index . 1 }}
{{- range $option, $value := $options }}
{{ include "airflow-teams.envVar" (list (printf "%s%s__%s" $prefix (upper $section) (upper $option)) $value) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Every Airflow container. Argument: $root. */}}
{{- define "airflow-teams.commonEnv" -}}
{{- $configDir := include "airflow-teams.configDir" . }}
{{ include "airflow-teams.envVar" (list "AIRFLOW_HOME" "/opt/airflow") }}
{{ include "airflow-teams.envVar" (list "AIRFLOW_CONFIG" (printf "%s/airflow.cfg" $configDir)) }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__WEBSERVER__CONFIG_FILE" (printf "%s/webserver_config.py" $configDir)) }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__MULTI_TEAM" "True") }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__EXECUTOR" (include "airflow-teams.executorJson" .)) }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION" "True") }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR" "True") }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__DAGS_FOLDER" .Values.dags.folder) }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__AUTH_MANAGER" .Values.webserver.authManager) }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__CORE__HOSTNAME_CALLABLE" "airflow.utils.net.get_host_ip_address") }}
{{- range (include "airflow-teams.teams" . | fromYaml).teams }}
{{ include "airflow-teams.envVar" (list (printf "%sCORE__DAGS_FOLDER" .envPrefix) (join "," .dagsFolders)) }}
{{- end }}
{{- include "airflow-teams.configEnv" (list "AIRFLOW__" .Values.config) }}
{{- end }}

{{/* A team's own options (its config, executor settings for the scheduler side). */}}
{{- define "airflow-teams.teamOptionsEnv" -}}
{{- $t := .team }}
{{- include "airflow-teams.configEnv" (list $t.envPrefix $t.config) }}
{{- if $t.kubernetes }}
{{ include "airflow-teams.envVar" (list (printf "%sKUBERNETES_EXECUTOR__NAMESPACE" $t.envPrefix) $t.namespace) }}
{{ include "airflow-teams.envVar" (list (printf "%sKUBERNETES_EXECUTOR__POD_TEMPLATE_FILE" $t.envPrefix) (printf "/opt/airflow/pod-templates/%s.yaml" $t.slug)) }}
{{- end }}
{{- end }}

{{- define "airflow-teams.secretsBackendEnv" -}}
{{- $t := .team }}
{{- with $t.secretsBackend }}
{{ include "airflow-teams.envVar" (list (printf "%sSECRETS__BACKEND" $t.envPrefix) .backend) }}
{{- if .kwargsSecret }}
{{ include "airflow-teams.secretEnvVar" (list (printf "%sSECRETS__BACKEND_KWARGS" $t.envPrefix) .kwargsSecret "backend-kwargs") }}
{{- else if .kwargs }}
{{ include "airflow-teams.envVar" (list (printf "%sSECRETS__BACKEND_KWARGS" $t.envPrefix) (toJson .kwargs)) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "airflow-teams.internalApiClientEnv" -}}
{{- $t := .team }}
{{ include "airflow-teams.envVar" (list (printf "%sCORE__INTERNAL_API_URL" $t.envPrefix) (include "airflow-teams.internalApiUrl" $t)) }}
{{ include "airflow-teams.secretEnvVar" (list (printf "%sCORE__INTERNAL_API_SECRET_KEY" $t.envPrefix) $t.keysSecret "internal-api-secret-key") }}
{{- end }}

{{/* The team's log-server key ([logging] log_server_secret_key of the team): webserver.fetchLogsFromTeamPods. */}}
{{- define "airflow-teams.logServerKeyEnv" -}}
{{- $t := .team }}
- name: {{ printf "%sLOGGING__LOG_SERVER_SECRET_KEY" $t.envPrefix }}
  valueFrom:
    secretKeyRef:
      name: {{ $t.keysSecret }}
      key: log-server-secret-key
      optional: true
{{- end }}

{{- define "airflow-teams.brokerEnv" -}}
{{- $t := .team }}
{{ include "airflow-teams.secretEnvVar" (list (printf "%sCELERY__BROKER_URL" $t.envPrefix) $t.brokerSecret "broker-url") }}
{{ include "airflow-teams.secretEnvVar" (list (printf "%sCELERY__RESULT_BACKEND" $t.envPrefix) $t.brokerSecret "result-backend") }}
{{- end }}

{{- define "airflow-teams.databaseEnv" }}
{{ include "airflow-teams.secretEnvVar" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" (include "airflow-teams.databaseSecret" .) "connection") }}
{{- end }}

{{- define "airflow-teams.fernetEnv" }}
{{ include "airflow-teams.secretEnvVar" (list "AIRFLOW__CORE__FERNET_KEY" (include "airflow-teams.fernetSecret" .) "fernet-key") }}
{{- end }}

{{- define "airflow-teams.webserverKeyEnv" }}
{{ include "airflow-teams.secretEnvVar" (list "AIRFLOW__WEBSERVER__SECRET_KEY" (include "airflow-teams.webserverSecret" .) "secret-key") }}
{{- end }}

{{/*
The environment of a shared component. Call with dict "root" $ "kind" (scheduler | webserver | job).
*/}}
{{- define "airflow-teams.sharedEnv" -}}
{{- $root := .root }}
{{- include "airflow-teams.commonEnv" $root }}
{{- include "airflow-teams.databaseEnv" $root }}
{{- include "airflow-teams.fernetEnv" $root }}
{{- if eq .kind "webserver" }}
{{- include "airflow-teams.webserverKeyEnv" $root }}
{{- end }}
{{- range (include "airflow-teams.teams" $root | fromYaml).teams }}
{{- include "airflow-teams.teamOptionsEnv" (dict "team" .) }}
{{- if and (eq $.kind "scheduler") .celery }}
{{- include "airflow-teams.brokerEnv" (dict "team" .) }}
{{- end }}
{{- if and (eq $.kind "webserver") $root.Values.webserver.fetchLogsFromTeamPods }}
{{ include "airflow-teams.logServerKeyEnv" (dict "team" .) }}
{{- end }}
{{- end }}
{{- with $root.Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The environment of team T's internal API: trusted, with the database; it verifies T's tokens with
T's key and, during a rotation, T's previous key. Call with dict "root" $ "team" $t.
*/}}
{{- define "airflow-teams.internalApiEnv" -}}
{{- $t := .team }}
{{- include "airflow-teams.commonEnv" .root }}
{{- include "airflow-teams.databaseEnv" .root }}
{{- include "airflow-teams.fernetEnv" .root }}
{{- include "airflow-teams.teamOptionsEnv" . }}
{{- include "airflow-teams.internalApiClientEnv" . }}
- name: {{ printf "%sCORE__INTERNAL_API_PREVIOUS_SECRET_KEY" $t.envPrefix }}
  valueFrom:
    secretKeyRef:
      name: {{ $t.keysSecret }}
      key: internal-api-previous-secret-key
      optional: true
{{- include "airflow-teams.secretsBackendEnv" . }}
{{- end }}

{{/*
The environment of a component of team T that runs T's code, without database access. Call with
dict "root" $ "team" $t "kind" (dag-processor | triggerer | worker | task).
*/}}
{{- define "airflow-teams.teamEnv" -}}
{{- $t := .team }}
{{- include "airflow-teams.commonEnv" .root }}
{{ include "airflow-teams.envVar" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" "none://") }}
{{- include "airflow-teams.configEnv" (list $t.envPrefix $t.config) }}
{{- include "airflow-teams.internalApiClientEnv" . }}
{{- include "airflow-teams.secretsBackendEnv" . }}
{{- if eq .kind "worker" }}
{{- include "airflow-teams.brokerEnv" . }}
{{- end }}
{{- if eq .kind "triggerer" }}
{{- include "airflow-teams.fernetEnv" .root }}
{{- end }}
{{- if and .root.Values.webserver.fetchLogsFromTeamPods (has .kind (list "worker" "triggerer")) }}
{{ include "airflow-teams.logServerKeyEnv" . }}
{{- end }}
{{- with $t.env }}
{{ toYaml . }}
{{- end }}
{{- end }}
