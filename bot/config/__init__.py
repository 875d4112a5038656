"""The configuration: YAML with `${ENV}` substitution, validated once into frozen pydantic models (one per key)."""

from bot.config.advice import warnings
from bot.config.loading import DEFAULT_CONFIG_PATH, load_config, parse_config, substitute_env, summary
from bot.config.oidc import OidcConfig
from bot.config.policy import ApprovalConfig, PolicyConfig, RuleConfig
from bot.config.rancher import RancherConfig
from bot.config.root import Config
from bot.config.schedule import DigestConfig, ScheduleConfig
from bot.config.security import SecurityConfig
from bot.config.server import ServerConfig
from bot.config.slack import SlackChannels, SlackConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApprovalConfig",
    "Config",
    "DigestConfig",
    "OidcConfig",
    "PolicyConfig",
    "RancherConfig",
    "RuleConfig",
    "ScheduleConfig",
    "SecurityConfig",
    "ServerConfig",
    "SlackChannels",
    "SlackConfig",
    "load_config",
    "parse_config",
    "substitute_env",
    "summary",
    "warnings",
]
