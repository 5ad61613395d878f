//! `sda list`: every registered plugin, by kind.

use crate::registry::{
    self, BlanketPlugin, GuidancePlugin, MethodPlugin, ObservationPlugin, Plugin, SamplerPlugin,
    SchedulePlugin, SmootherPlugin, SystemPlugin,
};
use crate::Result;

fn list_section<T: Plugin + inventory::Collect>(title: &str, out: &mut String) -> Result<()> {
    out.push_str(&format!("{title}:\n"));
    let entries = registry::entries::<T>()?;
    let width = entries.iter().map(|e| e.name().len()).max().unwrap_or(0);
    for e in entries {
        out.push_str(&format!("  {:<width$}  {}\n", e.name(), e.description()));
    }
    Ok(())
}

/// The text of `sda list`.
pub fn list_text() -> Result<String> {
    let mut s = String::new();
    list_section::<SystemPlugin>("systems", &mut s)?;
    list_section::<ObservationPlugin>("observations", &mut s)?;
    list_section::<BlanketPlugin>("blankets", &mut s)?;
    list_section::<GuidancePlugin>("guidance", &mut s)?;
    list_section::<SamplerPlugin>("samplers", &mut s)?;
    list_section::<SchedulePlugin>("schedules", &mut s)?;
    list_section::<MethodPlugin>(
        "classical methods (sda baseline; the ensemble filters also sda evaluate --smoother)",
        &mut s,
    )?;
    list_section::<SmootherPlugin>(
        "classical window smoothers (sda evaluate --smoother)",
        &mut s,
    )?;
    Ok(s)
}
