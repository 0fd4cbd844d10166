//! The splitter services of the AI section: `model:{alias}` for a model
//! alias with a split, `prompt:{name}` for a prompt template.

use super::Ai;

/// The splitter service of a model alias with a split: `model:{alias}`.
pub fn model_service(alias: &str) -> String {
    format!("model:{alias}")
}

/// The splitter service of a prompt template: `prompt:{name}`.
pub fn prompt_service(prompt: &str) -> String {
    format!("prompt:{prompt}")
}

impl Ai {
    /// The services the splitter sees for the AI section: `model:{alias}`
    /// for each alias with a split (versions: the alias itself, with what
    /// the split leaves, and each alias of its split), and `prompt:{name}`
    /// for each prompt template (versions: its versions). Each version has
    /// one pseudo-target (`model://…`, `prompt://…`) that is never called,
    /// and outlier detection is off: fallbacks handle failing providers.
    pub fn services(&self) -> Vec<crate::Service> {
        let version = |name: &str, weight: Option<u32>, url: String| crate::Version {
            name: name.to_owned(),
            weight,
            targets: vec![crate::Target { url, weight: 1 }],
            deprecation: None,
        };
        let service = |name: String, versions| crate::Service {
            name,
            versions,
            balancer: crate::Balancer::default(),
            outlier_detection: crate::OutlierDetection {
                failures: 0,
                ..crate::OutlierDetection::default()
            },
        };
        let models = self.models.iter().filter(|m| !m.split.is_empty()).map(|m| {
            let shared: u32 = m.split.iter().map(|s| s.weight).sum();
            let own = version(
                &m.alias,
                Some(100_u32.saturating_sub(shared)),
                format!("model://{}", m.alias),
            );
            let others = m
                .split
                .iter()
                .map(|s| version(&s.alias, Some(s.weight), format!("model://{}", s.alias)));
            service(
                model_service(&m.alias),
                std::iter::once(own).chain(others).collect(),
            )
        });
        let prompts = self.prompts.iter().map(|p| {
            let versions = p
                .versions
                .iter()
                .map(|v| version(&v.name, v.weight, format!("prompt://{}/{}", p.name, v.name)))
                .collect();
            service(prompt_service(&p.name), versions)
        });
        models.chain(prompts).collect()
    }
}
