# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""health_probe's action plugin. When the task runs on the controller itself (connection local, which is how
URL checks are run: delegate_to localhost), the checks run right here in the worker process: no module is
built, copied and started, which is most of a task's cost (0.7 s here for any module, against a 200 ms check).
Anywhere else (a managed host, or with become) the module runs there as usual."""

from __future__ import annotations

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.stackops.runbook.plugins.module_utils import _health

LOCAL_TRANSPORTS = ("local", "ansible.builtin.local")


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def _on_controller(self):
        if self._connection.transport not in LOCAL_TRANSPORTS or self._play_context.become:
            return False
        try:  # the libraries the checks need must be in the controller's Python, else let the module say so
            import jmespath  # noqa: F401 pylint: disable=unused-import
            if _health.needs_docker(self._task.args):
                import docker  # noqa: F401 pylint: disable=unused-import
        except ImportError:
            return False
        return True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not isinstance(self._task.args.get("checks"), list) or not self._on_controller():
            result.update(self._execute_module(module_name="stackops.runbook.health_probe",
                                               module_args=self._task.args, task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=_health.argument_spec())
        secrets = _health.secrets(params)
        try:
            _health.validate(params)
            result.update(_health.probe(params, self._task.check_mode))
        except _health.ProbeFailed as exc:
            result.update(exc.result, failed=True, msg=str(exc))
        # checks are free-form dicts: mask their passwords the way no_log masks a module's
        return remove_values(result, secrets)
