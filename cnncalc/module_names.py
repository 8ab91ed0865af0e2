"""Which row names PyTorch can register as module names: asked by the bridge and the exporter
alike, so it lives here, free of torch and of both of them."""

from __future__ import annotations

from .errors import CnncalcError, Where

# Attributes of nn.Module and nn.ModuleDict: a child module cannot take one of these names.
# tests/test_export.py checks this set against the installed torch.
RESERVED = frozenset(
    """
T_destination add_module apply bfloat16 buffers call_super_init children clear compile cpu cuda double
dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
ipu items keys load_state_dict modules mtia named_buffers named_children named_modules named_parameters
parameters pop register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
to_empty train training type update values xpu zero_grad
""".split()
)


def check_module_name(name: str, where: Where) -> None:
    """Refuse a row name PyTorch cannot register (the bridge and the exporter both ask)."""
    for part in name.split("."):
        if part in RESERVED:
            raise CnncalcError(
                f"layer name '{name}' cannot be a PyTorch module name",
                received=part,
                expected="a name that is not an attribute of nn.Module (such as 'forward', 'eval' or 'training')",
                hint=f"rename it in the spec, e.g. '{part}_'",
            ).located(where)
