"""Developer CLI of the Airflow multi-team fork (``./breeze``)."""
